"""The Streamlit portal: router, sign-in, shared page helpers and the one-port server."""
