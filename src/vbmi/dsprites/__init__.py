"""Decoder-free representation learning on dSprites (paper Sec. 3.1, Fig. 5); see issue 6."""
