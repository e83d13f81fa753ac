package main

import (
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/reconfig"
)

// configCommands show and replace the running config (package reconfig).
func configCommands() map[string]ctlCommand {
	return map[string]ctlCommand{
		"config": {help: "the running config: generation, hash, last apply (-json adds the document)", nargs: 0, run: func(e *ctlEnv, _ []string) error {
			cs, err := e.c.Config()
			if err != nil {
				return err
			}
			return e.print(cs, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "generation\t%d\nhash\t%s\nsince\t%s\n", cs.Generation, cs.Hash, cs.Since.Format(time.RFC3339))
				if a := cs.Last; a != nil {
					fmt.Fprintf(w, "last apply\tgeneration %d %s: %s %s\n", a.Generation, a.Hash[:12], a.State, a.Error)
				}
			})
		}},
		"apply": {args: "FILE", help: "replace the running config whole with FILE; waits for the outcome", nargs: 1, run: func(e *ctlEnv, args []string) error {
			doc, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			a, err := e.c.PutConfig(doc)
			if err != nil {
				return err
			}
			for end := time.Now().Add(90 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
				cs, err := e.c.Config()
				if err != nil || cs.Last == nil || cs.Last.Generation != a.Generation || cs.Last.State == reconfig.StateApplying {
					continue
				}
				if cs.Last.State != reconfig.StateApplied {
					return fmt.Errorf("the node did not keep it (%s): %s", cs.Last.State, cs.Last.Error)
				}
				fmt.Fprintf(e.stdout(), "applied: generation %d\n", cs.Generation)
				return nil
			}
			return fmt.Errorf("no outcome within 90 s")
		}},
	}
}
