package search

import "testing"

func TestFindsTheFirstItem(t *testing.T) {
	if !Contains([]string{"go", "rust"}, "go") {
		t.Error("go is in the list")
	}
}

func TestFindsTheLastItem(t *testing.T) {
	if !Contains([]string{"go", "rust"}, "rust") {
		t.Error("rust is in the list")
	}
}
