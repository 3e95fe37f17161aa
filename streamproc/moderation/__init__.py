"""Content moderation: the taxonomy, model packs, the engine and its analysis stage."""
