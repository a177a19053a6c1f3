package proc

import (
	"fmt"
	"os"
	"reflect"
	"syscall"

	"github.com/mpq-go/mpq"

	"github.com/mpq-go/mpq/internal/shm"
)

// prepared holds a Start's arguments as they travel: their descriptions for
// the payload and the descriptors to hand to the child.
type prepared struct {
	args  []wireArg
	files []*os.File // descriptor firstArg+i in the child is files[i]
	owned []*os.File // those of files made for the child: closed after start
}

// release closes the descriptors made for the child.
func (a *prepared) release() {
	for _, f := range a.owned {
		f.Close()
	}
	a.owned = nil
}

// addFile hands f to the child and returns its descriptor number there.
func (a *prepared) addFile(f *os.File, owned bool) int {
	a.files = append(a.files, f)
	if owned {
		a.owned = append(a.owned, f)
	}
	return firstArg + len(a.files) - 1
}

// param returns the type of the parameter that takes argument i (from 0,
// not counting ctx).
func (f *Func) param(i int) reflect.Type {
	t := f.typ
	if t.IsVariadic() && i+1 >= t.NumIn()-1 {
		return t.In(t.NumIn() - 1).Elem()
	}
	return t.In(i + 1)
}

// arity checks the number of arguments.
func (f *Func) arity(n int) error {
	want := f.typ.NumIn() - 1
	switch {
	case f.typ.IsVariadic() && n < want-1:
		return fmt.Errorf("%w: %s takes at least %d arguments, got %d", ErrInvalidArgs, f.name, want-1, n)
	case !f.typ.IsVariadic() && n != want:
		return fmt.Errorf("%w: %s takes %d arguments, got %d", ErrInvalidArgs, f.name, want, n)
	}
	return nil
}

// prepare checks args against the function's parameters and makes what the
// child needs of them. The caller releases the result.
func (f *Func) prepare(args []any) (*prepared, error) {
	if err := f.arity(len(args)); err != nil {
		return nil, err
	}
	a := &prepared{}
	for i, v := range args {
		w, err := a.add(v, f.param(i))
		if err != nil {
			a.release()
			// Out of descriptors for it is not the argument's fault.
			if e := shm.ExplainLimit(fmt.Sprintf("pass argument %d of %s", i+1, f.name), err); e != nil {
				return nil, fmt.Errorf("proc: start %s: %w", f.name, e)
			}
			return nil, fmt.Errorf("%w: argument %d of %s: %v", ErrInvalidArgs, i+1, f.name, err)
		}
		a.args = append(a.args, w)
	}
	return a, nil
}

// add makes what the child needs of argument v for a parameter of type p.
func (a *prepared) add(v any, p reflect.Type) (wireArg, error) {
	if v == nil {
		switch p.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface:
			return wireArg{Kind: argNil}, nil
		}
		return wireArg{}, fmt.Errorf("want %v, got nil", p)
	}
	vt := reflect.TypeOf(v)
	switch x := v.(type) {
	case *mpq.Queue, *mpq.Conn, *os.File:
		if !vt.AssignableTo(p) {
			return wireArg{}, fmt.Errorf("want %v, got %v", p, vt)
		}
		if reflect.ValueOf(v).IsNil() {
			return wireArg{}, fmt.Errorf("got a nil %v", vt)
		}
		switch x := x.(type) {
		case *mpq.Queue:
			f, owned, err := queueFile(x)
			if err != nil {
				return wireArg{}, err
			}
			return wireArg{Kind: argQueue, FDs: []int{a.addFile(f, owned)}}, nil
		case *mpq.Conn:
			files, err := x.Files()
			if err != nil {
				return wireArg{}, err
			}
			defer func() {
				for _, f := range files {
					if f != nil {
						f.Close()
					}
				}
			}()
			fds := make([]int, len(files))
			for i, f := range files {
				fds[i] = -1
				if f != nil {
					d, err := dupFile(f)
					if err != nil {
						return wireArg{}, err
					}
					fds[i] = a.addFile(d, true)
				}
			}
			return wireArg{Kind: argConn, FDs: fds}, nil
		case *os.File:
			d, err := dupFile(x)
			if err != nil {
				return wireArg{}, err
			}
			return wireArg{Kind: argFile, FDs: []int{a.addFile(d, true)}, Name: x.Name()}, nil
		}
	}
	switch {
	case p == queueType || p == connType || p == fileType:
		return wireArg{}, fmt.Errorf("want %v, got %v", p, vt)
	case p.Kind() == reflect.Interface:
		return wireArg{}, fmt.Errorf("want %v, got %v: a plain value needs a parameter of a concrete type", p, vt)
	}
	mismatch := func(err error) error {
		if vt == p {
			return fmt.Errorf("cannot send a %v: %v", vt, err)
		}
		return fmt.Errorf("want %v, got %v: %v", p, vt, err)
	}
	data, err := encMode.Marshal(v)
	if err != nil {
		return wireArg{}, mismatch(err)
	}
	// Decode it as the child will, so that a mismatch fails here.
	if err := decMode.Unmarshal(data, reflect.New(p).Interface()); err != nil {
		return wireArg{}, mismatch(err)
	}
	return wireArg{Kind: argValue, Value: data}, nil
}

// open makes the child's value of argument w for a parameter of type p,
// recording in c how to close what it opened.
func (c *child) open(w wireArg, p reflect.Type) (reflect.Value, error) {
	for _, fd := range w.FDs {
		if fd >= firstArg {
			syscall.CloseOnExec(fd) // not for the function's own children
		}
	}
	fdArg := func(i int, name string) (*os.File, error) {
		if i >= len(w.FDs) || w.FDs[i] < 0 {
			return nil, nil
		}
		f := os.NewFile(uintptr(w.FDs[i]), name)
		if f == nil {
			return nil, fmt.Errorf("bad descriptor %d", w.FDs[i])
		}
		c.onClose(f.Close)
		return f, nil
	}
	var v any
	switch w.Kind {
	case argNil:
		return reflect.Zero(p), nil
	case argValue:
		ptr := reflect.New(p)
		if err := decMode.Unmarshal(w.Value, ptr.Interface()); err != nil {
			return reflect.Value{}, fmt.Errorf("decode %v: %v", p, err)
		}
		return ptr.Elem(), nil
	case argQueue:
		// The descriptor stays open until the queue is closed: on systems
		// other than Linux, closing it would drop the queue's locks.
		f, err := fdArg(0, "queue")
		if err != nil || f == nil {
			return reflect.Value{}, fmt.Errorf("queue: no descriptor (%v)", err)
		}
		q, err := mpq.OpenFile(f, nil)
		if err != nil {
			return reflect.Value{}, err
		}
		c.onClose(q.Close)
		v = q
	case argConn:
		files := make([]*os.File, 3)
		names := []string{"conn-socket", "conn-recv", "conn-send"}
		for i := range files {
			f, err := fdArg(i, names[i])
			if err != nil {
				return reflect.Value{}, err
			}
			files[i] = f
		}
		conn, err := mpq.FileConn(files)
		if err != nil {
			return reflect.Value{}, err
		}
		c.onClose(conn.Close)
		v = conn
	case argFile:
		f, err := fdArg(0, w.Name)
		if err != nil || f == nil {
			return reflect.Value{}, fmt.Errorf("file: no descriptor (%v)", err)
		}
		v = f
	default:
		return reflect.Value{}, fmt.Errorf("unknown kind of argument %d", w.Kind)
	}
	rv := reflect.ValueOf(v)
	if !rv.Type().AssignableTo(p) {
		return reflect.Value{}, fmt.Errorf("want %v, got %v", p, rv.Type())
	}
	return rv, nil
}
