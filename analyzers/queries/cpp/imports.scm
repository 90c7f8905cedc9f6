[(preproc_include) (using_declaration)] @import
