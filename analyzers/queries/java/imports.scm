[(package_declaration) (import_declaration)] @import
