//! The reasoning tasks: prompts, parsers and checkers.
