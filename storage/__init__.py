"""spendbot storage: SQLAlchemy models, the FOCUS cost store and migrations."""
