use factorial::{choose, factorial};

#[test]
fn factorial_of_five() {
    assert_eq!(factorial(5), 120);
}

#[test]
fn five_choose_two() {
    assert_eq!(choose(5, 2), 10);
}
