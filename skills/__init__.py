"""spendbot skills: one module per capability, each declared once in the registry."""
