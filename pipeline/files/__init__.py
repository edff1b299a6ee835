"""Writing files and folders so that nothing is half-written and nothing the user owns is lost."""
