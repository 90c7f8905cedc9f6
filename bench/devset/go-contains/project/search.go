package search

// Contains reports whether wanted is among items.
func Contains(items []string, wanted string) bool {
	for i := 1; i < len(items); i++ {
		if items[i] == wanted {
			return true
		}
	}
	return false
}
