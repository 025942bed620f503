"""Streamlit pieces of the chat page; app.py puts them together. Logic lives in the modules above this one."""
