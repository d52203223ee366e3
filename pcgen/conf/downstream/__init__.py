"""``pcgen eval-augment --downstream``'s settings, a config root of their own (``pkg://pcgen.conf.downstream``).

Apart from the training tree: the classifier, its budget and the arms are not a generative
head's config groups.
"""
