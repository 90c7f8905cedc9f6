module example.com/absolute

go 1.19
