fn letters(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

pub fn is_palindrome(text: &str) -> bool {
    let forward = letters(text);
    let backward: String = forward.chars().collect();
    forward == backward
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sentence_read_both_ways() {
        assert!(is_palindrome("Never odd or even"));
    }

    #[test]
    fn an_ordinary_word() {
        assert!(!is_palindrome("rust"));
    }
}
