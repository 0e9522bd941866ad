// Package cryo checkpoints a running Linux process tree to image files and
// restores it later, here or on another host with the same kernel, the way
// the cryo command does: the same PIDs, memory, registers, files, pipes,
// sockets, namespaces and credentials. The images are CRIU's, so CRIU's
// crit reads them.
//
// A program that uses the package calls [Init] first thing in main: a
// restore and a dump re-execute the program's own binary (/proc/self/exe)
// as blank stub processes and helpers, and Init is where such a copy takes
// its role instead of running the program. Then [Dump] checkpoints a tree
// and [Restore] brings one back:
//
//	func main() {
//		cryo.Init()
//		...
//		if _, err := cryo.Dump(ctx, pid, cryo.DumpOptions{Dir: dir}); err != nil {
//			var refused *cryo.RefusedError
//			if errors.As(err, &refused) { ... the tree runs on as it was ... }
//		}
//		p, err := cryo.Restore(ctx, dir, cryo.RestoreOptions{})
//		...
//		status, err := p.Wait()
//	}
//
// Dumping another user's processes, and restoring with their PIDs, takes
// root; a normal user dumps and restores trees in user namespaces of its
// own (see the README's Rootless section). The calling process must not be
// a tracer of the tree already.
package cryo
