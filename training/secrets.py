"""Finding keys, tokens and passwords in a file, so that it never becomes training data.

Two kinds of rule, each line by line: provider formats (private keys, AWS, GitHub, GitLab,
Slack, Hugging Face, Anthropic, OpenAI, Stripe, Google, npm tokens, JWTs, Bearer headers,
passwords in URLs, connection strings and `curl -u`), and values given to secret-looking names
(an assignment, a keyword argument, a dict or YAML key, a .env line). A value is a secret unless
it is a placeholder ("xxx", "<token>", "${VAR}", "changeme", a header or variable name, a path),
and for names, only when it looks random enough: a dropped file costs training data.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

# Provider formats: the group named `value` is what must not be a placeholder.
PROVIDER_PATTERNS = {
    "private key": r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?P<value>)",
    "AWS access key": r"\b(?P<value>(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16})\b",
    "AWS secret key": r"(?i)aws_?secret_?access_?key\W{1,4}(?P<value>[A-Za-z0-9/+=]{40})\b",
    "GitHub token": r"\b(?P<value>gh[pousr]_[A-Za-z0-9]{36,255})\b",
    "GitHub fine-grained token": r"\b(?P<value>github_pat_[A-Za-z0-9_]{40,255})\b",
    "GitLab token": r"\b(?P<value>gl(?:pat|ptt|dt|rt|cbt|oas)-[A-Za-z0-9_\-]{20,})",
    "Slack token": r"\b(?P<value>xox[abposr]-[A-Za-z0-9-]{10,})",
    "Slack webhook": r"hooks\.slack\.com/services/(?P<value>T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]+)",
    "Hugging Face token": r"\b(?P<value>hf_[A-Za-z0-9]{30,})\b",
    "Anthropic key": r"\b(?P<value>sk-ant-[A-Za-z0-9_\-]{20,})",
    "OpenAI key": r"\b(?P<value>sk-(?:proj-|svcacct-)?[A-Za-z0-9_\-]{32,})",
    "Stripe key": r"\b(?P<value>[sr]k_(?:live|test)_[A-Za-z0-9]{16,})",
    "Google API key": r"\b(?P<value>AIza[0-9A-Za-z_\-]{35})",
    "npm token": r"\b(?P<value>npm_[A-Za-z0-9]{36})\b",
    "JWT": r"\b(?P<value>eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})",
    "Bearer header": r"\bBearer\s+(?P<value>[A-Za-z0-9\-._~+/]{16,}=*)",
    "password in a URL": r"\b[a-z][a-z0-9+.\-]*://[^/\s:@'\"]*:(?P<value>[^@\s'\"/]+)@",
    "connection string password": r"(?i)(?:^|[;'\"\s])(?:password|pwd)\s*=\s*(?P<value>[^;'\"\s]+)",
    "curl credentials": r"(?:\s-u|--user)\s+[^\s:'\"]+:(?P<value>[^\s'\"]+)",
    "password in an auth pair":
        r"\bauth\s*=\s*\(\s*['\"][^'\"]+['\"]\s*,\s*['\"](?P<value>[^'\"]+)",
}
SECRET_NAME = (r"[A-Za-z0-9_.-]*(?:passw(?:or)?d|pwd|secret|token|api_?key|apikey|access_?key|"
               r"private_?key|credential|auth_?key|client_?secret|signing_?key)[A-Za-z0-9_]*")
# name = "value", name: 'value', "name": "value", name="value" (a keyword argument).
QUOTED_ASSIGNMENT = re.compile(
    rf"""(?i)["']?(?P<name>{SECRET_NAME})["']?\s*(?::=|=>|=|:)\s*[rbf]?(?P<quote>["'])"""
    r"""(?P<value>[^"'\s]{4,})(?P=quote)""")
# NAME=value and name: value, unquoted, in configuration files only (in code that is a variable).
BARE_ASSIGNMENT = re.compile(
    rf"""(?i)^\s*(?:export\s+)?(?P<name>{SECRET_NAME})\s*[=:]\s*(?P<value>[^\s'"#]{{4,}})\s*$""")
CONFIGURATION_SUFFIXES = frozenset({".env", ".ini", ".cfg", ".conf", ".properties", ".yml",
                                    ".yaml", ".sh", ".bash", ".zsh", ".npmrc", ".netrc"})
PLACEHOLDER = re.compile(
    r"(?i)^(?:x+|\*+|\.+|-+|_+|#+|0+|1234\d*|none|null|nil|undefined|true|false|todo|tbd|"
    r"changeme|change_?me|redacted|secret|password|passwd|token|bearer|basic)$|"
    r"your|example|placeholder|dummy|sample|fake|xxxx|\*\*\*|\.\.\.|<|>|\{|\}|\$|%\(|%s|"
    r"^env[:.]|^process\.env|^os\.environ|^settings\.|^config\.")
# A value made of words and separators: a header name, a variable name, a path, a label.
WORDS_ONLY = re.compile(r"^[\s_\-./:]*[A-Za-z]+(?:[\s_\-./:]+[A-Za-z]*)*$")
MIN_RANDOM_LENGTH = 8
MIN_RANDOM_BITS_PER_CHAR = 3.0
# A value of letters alone is a word unless it is long and as varied as a random string.
MIN_LETTERS_ONLY_LENGTH = 20
MIN_LETTERS_ONLY_BITS_PER_CHAR = 4.0

COMPILED = {kind: re.compile(pattern) for kind, pattern in PROVIDER_PATTERNS.items()}


@dataclass(frozen=True)
class Finding:
    kind: str
    line: int  # 1-based


def find_secrets(text: str, filename: str = "") -> list[Finding]:
    """Every line of `text` that holds a secret, with the kind of the first rule that saw it."""
    configuration = _is_configuration(filename)
    findings = []
    for number, line in enumerate(text.splitlines(), start=1):
        kind = _line_secret(line, configuration)
        if kind:
            findings.append(Finding(kind, number))
    return findings


def has_secret(path: Path) -> bool:
    """True when the file holds a key, token or password."""
    text = path.read_text(encoding="utf-8", errors="replace")
    return bool(find_secrets(text, path.name))


def _line_secret(line: str, configuration: bool) -> str:
    for kind, pattern in COMPILED.items():
        for match in pattern.finditer(line):
            if kind == "private key" or not is_placeholder(match.group("value")):
                return kind
    assignments = [QUOTED_ASSIGNMENT] + ([BARE_ASSIGNMENT] if configuration else [])
    for pattern in assignments:
        for match in pattern.finditer(line):
            if looks_secret(match.group("name"), match.group("value")):
                return f"value of {match.group('name')}"
    return ""


def is_placeholder(value: str) -> bool:
    """True for a value that stands for a secret rather than being one."""
    if len(value) < 4 or PLACEHOLDER.search(value):
        return True
    most_common = Counter(value).most_common(1)[0][1]
    return most_common / len(value) > 0.5 or bits_per_char(value) < 2.0


def looks_secret(name: str, value: str) -> bool:
    """True when `value`, given to a secret-looking `name`, is no placeholder, word or path and
    is random enough (a password needs a digit or a symbol besides letters)."""
    if is_placeholder(value) or "://" in value or value.lower() in name.lower():
        return False
    if WORDS_ONLY.match(value):
        return (len(value) >= MIN_LETTERS_ONLY_LENGTH
                and bits_per_char(value) >= MIN_LETTERS_ONLY_BITS_PER_CHAR)
    if re.search(r"passw|pwd", name, re.IGNORECASE):
        return len(value) >= 6
    return len(value) >= MIN_RANDOM_LENGTH and bits_per_char(value) >= MIN_RANDOM_BITS_PER_CHAR


def bits_per_char(value: str) -> float:
    """Shannon entropy of the characters of `value`."""
    counts = Counter(value)
    return -sum(count / len(value) * math.log2(count / len(value)) for count in counts.values())


def _is_configuration(filename: str) -> bool:
    name = Path(filename).name.lower()
    return name.startswith(".env") or Path(name).suffix in CONFIGURATION_SUFFIXES
