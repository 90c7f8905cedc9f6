pub fn is_vowel(c: char) -> bool {
    "aeio".contains(c.to_ascii_lowercase())
}

pub fn count_vowels(text: &str) -> usize {
    text.chars().filter(|c| is_vowel(*c)).count()
}
