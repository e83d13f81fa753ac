package main

// secondaryCommands are the ctl commands for transfers: refresh, retransfer, transfer status (the secondary-service issue).
func secondaryCommands() map[string]ctlCommand { return nil }
