"""MMSA flows."""
