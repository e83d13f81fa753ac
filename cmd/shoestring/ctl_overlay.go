package main

// overlayCommands are the ctl commands for overlay: tailnet peers, metrics (the overlay issue).
func overlayCommands() map[string]ctlCommand { return nil }
