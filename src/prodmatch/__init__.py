"""prodmatch: find the postings that sell the same product (Shopee, CCKS 2022 task 9.2)."""
__version__ = "0.1.0"
