// Package sysv reads and recreates the System V IPC objects (shared memory
// segments, semaphore sets, message queues) of the IPC namespace the
// calling OS thread is in. Callers run it on a locked thread that joined
// the namespace, since IPC namespaces are per thread.
package sysv

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// Object is one line of /proc/sysvipc/{shm,sem,msg}, ids as the reader's
// user namespace sees them.
type Object struct {
	Key        int32
	ID         int
	Mode       uint32
	UID, GID   uint32
	CUID, CGID uint32
	Size       uint64 // shm: bytes; sem: nsems; msg: bytes queued
	Count      uint64 // msg: number of messages
}

// List reads /proc/sysvipc/kind ("shm", "sem" or "msg").
func List(kind string) ([]Object, error) {
	b, err := os.ReadFile("/proc/sysvipc/" + kind)
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	if !sc.Scan() {
		return nil, nil
	}
	heads := bytes.Fields(sc.Bytes())
	var out []Object
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) != len(heads) {
			return nil, fmt.Errorf("/proc/sysvipc/%s: %d columns, heading has %d", kind, len(f), len(heads))
		}
		col := map[string]string{}
		for i, h := range heads {
			col[string(h)] = string(f[i])
		}
		num := func(name string, base int) uint64 {
			v, _ := strconv.ParseUint(col[name], base, 64)
			return v
		}
		key, _ := strconv.ParseInt(col["key"], 10, 64)
		o := Object{Key: int32(key), Mode: uint32(num("perms", 8)),
			UID: uint32(num("uid", 10)), GID: uint32(num("gid", 10)), CUID: uint32(num("cuid", 10)), CGID: uint32(num("cgid", 10))}
		switch kind {
		case "shm":
			o.ID, o.Size = int(num("shmid", 10)), num("size", 10)
		case "sem":
			o.ID, o.Size = int(num("semid", 10)), num("nsems", 10)
		case "msg":
			o.ID, o.Size, o.Count = int(num("msqid", 10)), num("cbytes", 10), num("qnum", 10)
		}
		out = append(out, o)
	}
	return out, nil
}
