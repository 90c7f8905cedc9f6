int max_of(const int *values, int count);
