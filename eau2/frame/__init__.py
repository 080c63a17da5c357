"""The local DataFrame, its rows and visitors, and conversion from Arrow, numpy and pandas."""
