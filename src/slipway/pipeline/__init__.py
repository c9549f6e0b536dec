"""One module per DVC stage: pure functions plus a thin ``main(params)`` that does the I/O."""
