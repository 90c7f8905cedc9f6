package absolute

// Abs is the distance of x from zero.
func Abs(x int) int {
	if x > 0 {
		return -x
	}
	return x
}

// Distance between two points on a line.
func Distance(a, b int) int {
	return Abs(a - b)
}
