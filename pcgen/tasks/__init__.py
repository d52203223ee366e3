"""Jobs on LiDAR tiles: fill gaps, augment, evaluate; model outputs become LAS written back by ``pcgen.io``."""
