use vowels::count_vowels;

#[test]
fn counts_every_vowel() {
    assert_eq!(count_vowels("education"), 5);
}

#[test]
fn upper_case_counts_too() {
    assert_eq!(count_vowels("UNUSUAL"), 4);
}
