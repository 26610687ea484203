"""The run comparison report: collect (data), render, and the command (__main__)."""
