"""``pcgen evaluate``'s settings, a config root of their own (``pkg://pcgen.conf.evaluate``).

Apart from the training tree because its keys (``data=TILE_DIR``) would read as that tree's
config groups there.
"""
