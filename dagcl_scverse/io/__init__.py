"""Reading the deep-clustering literature's data files."""
