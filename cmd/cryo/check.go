package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/cryo-cr/cryo/internal/check"
)

func cmdCheck(args []string) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	if len(o.positional) > 0 {
		return usageError("check takes no argument %q", o.positional[0])
	}
	if len(o.features) > 0 {
		return checkFeatures(o.features)
	}
	features := check.Basic(os.Geteuid() != 0)
	if o.checkAll {
		// --all: every feature under CRIU's name too, none essential.
		for _, f := range check.CRIU() {
			f.Name += " (" + f.What + ")"
			features = append(features, f)
		}
	}
	var missing []string
	for _, r := range check.Run(features) {
		state := "yes"
		switch {
		case r.Err != nil:
			state = "NO (" + r.Err.Error() + ")"
			if r.Essential {
				missing = append(missing, r.Name)
			}
		case r.Detail != "":
			state = "yes, " + r.Detail
		}
		fmt.Printf("%-62s %s\n", r.Name+":", state)
	}
	if len(missing) > 0 {
		return fmt.Errorf("essential features missing: %s", strings.Join(missing, ", "))
	}
	fmt.Println("Looks good.")
	return nil
}
