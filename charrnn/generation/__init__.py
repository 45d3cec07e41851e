"""Writing with a trained model: a request's state (``rows``), the rules that shape each character
(``processors``, ``shape``, ``shape_rules``, ``word_trie``, ``lookahead``), and the two drivers that apply them
identically, one request (``sample``) or many in a running batch (``batching``)."""
