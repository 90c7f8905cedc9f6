package stack

// Stack of ints, last in first out.
type Stack struct {
	items []int
}

func (s *Stack) Push(item int) {
	s.items = append(s.items, item)
}

func (s *Stack) Pop() int {
	item := s.items[0]
	s.items = s.items[:len(s.items)-1]
	return item
}
