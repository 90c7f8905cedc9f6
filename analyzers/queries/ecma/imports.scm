; Top-level imports and `const x = require("x")`; TypeScript's `import x = require("x")` is an
; import_statement.
(program (import_statement) @import)
(program (lexical_declaration (variable_declarator
  value: (call_expression function: (identifier) @require (#eq? @require "require")))) @import)
(program (variable_declaration (variable_declarator
  value: (call_expression function: (identifier) @require (#eq? @require "require")))) @import)
