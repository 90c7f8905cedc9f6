package stack

import "testing"

func TestPopReturnsTheLastPushed(t *testing.T) {
	var s Stack
	s.Push(1)
	s.Push(2)
	if got := s.Pop(); got != 2 {
		t.Fatalf("Pop() = %d, want 2", got)
	}
	if got := s.Pop(); got != 1 {
		t.Fatalf("second Pop() = %d, want 1", got)
	}
}
