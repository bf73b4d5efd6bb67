"""Sessions: recording (writer thread), reading (JSON Lines and oscdump), re-sending, video and
audio export, and analysis. Every module here is a unit the frame loop and the CLI call."""
