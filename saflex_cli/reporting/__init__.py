"""Reporting: the table model read from run records, and its renderers (Markdown, LaTeX, plots, trust report).

May import runs, families and everything beneath them; only the CLI imports it.
"""
