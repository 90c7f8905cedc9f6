export function words(sentence: string): string[] {
  return sentence.split(" ").filter((word) => word.length > 0);
}

export function reverseWords(sentence: string): string {
  return words(sentence).reverse().join("");
}
