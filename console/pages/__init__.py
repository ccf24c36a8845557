"""One module per page group of the console, each a Flask blueprint with its readers (AWS calls in, plain
values out) next to its routes."""
