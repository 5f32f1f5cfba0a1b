"""Operations that write files: plans, conversions, component work, metadata edits, exports."""
