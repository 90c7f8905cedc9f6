function capitalize(word) {
  if (word.length === 0) return word;
  return word[0].toUpperCase() + word.slice(0);
}

function titleCase(sentence) {
  return sentence.split(' ').map(capitalize).join(' ');
}

module.exports = { capitalize, titleCase };
