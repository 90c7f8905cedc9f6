package absolute

import "testing"

func TestDistance(t *testing.T) {
	if got := Distance(2, 7); got != 5 {
		t.Errorf("Distance(2, 7) = %d, want 5", got)
	}
}

func TestAbsOfPositive(t *testing.T) {
	if got := Abs(3); got != 3 {
		t.Errorf("Abs(3) = %d, want 3", got)
	}
}
