package sysv

// IPCSysctls are the IPC namespace's limits, in ipc_var_entry's order
// (after sem_ctls), as files under /proc/sys. A file the kernel lacks
// reads as 0 and is not restored.
var IPCSysctls = []string{
	"kernel/msgmax", "kernel/msgmnb", "kernel/msgmni", "kernel/auto_msgmni",
	"kernel/shmmax", "kernel/shmall", "kernel/shmmni", "kernel/shm_rmid_forced",
	"fs/mqueue/queues_max", "fs/mqueue/msg_max", "fs/mqueue/msgsize_max",
	"fs/mqueue/msg_default", "fs/mqueue/msgsize_default",
}
