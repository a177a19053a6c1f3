package proc

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/mpq-go/mpq"
)

// A Func is a function that can run in a child process, made by [Define].
// Its methods are safe for concurrent use.
type Func struct {
	name string
	fn   reflect.Value
	typ  reflect.Type
	err  error // why Define refused the function
	late bool  // defined after Main ran
}

var (
	registryMu sync.Mutex
	registry   = map[string]*Func{}

	// mainCalled is set by Main; Define notes a Func made after it.
	mainCalled atomic.Bool
)

// Define registers fn under name, so that a child process of this program
// can run it: call [Func.Start] on the result. Define it in a package-level
// variable, so that the child, which runs the same program, defines it too
// before main (and [Main]) runs:
//
//	var writer = proc.Define("writer", func(ctx context.Context, q *mpq.Queue, n int) error {
//		...
//	})
//
// fn is a func(ctx context.Context, args...) error, or the same without a
// result. Each parameter after ctx takes an argument of Start: a
// *mpq.Queue, a *mpq.Conn, an *os.File, or (for a parameter of a concrete
// type) a plain value, which travels encoded as CBOR (see [Func.Start]). A
// variadic function takes any number of arguments of its last parameter's
// element type.
//
// Define does not panic: if fn has another shape, if a parameter's type
// cannot travel to another process, if name is empty or was defined
// before, the returned Func records an error wrapping [ErrInvalidFunc],
// which [Func.Err] and [Func.Start] return. (An earlier Func of the name
// keeps working.)
func Define(name string, fn any) *Func {
	f := &Func{name: name, late: mainCalled.Load()}
	if f.err = check(name, fn); f.err != nil {
		return f
	}
	f.fn = reflect.ValueOf(fn)
	f.typ = f.fn.Type()
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[name]; dup {
		f.err = fmt.Errorf("%w: %q is defined twice", ErrInvalidFunc, name)
		return f
	}
	registry[name] = f
	return f
}

// lookup returns the function defined as name, or nil.
func lookup(name string) *Func {
	registryMu.Lock()
	defer registryMu.Unlock()
	return registry[name]
}

var (
	ctxType   = reflect.TypeFor[context.Context]()
	errorType = reflect.TypeFor[error]()
	queueType = reflect.TypeFor[*mpq.Queue]()
	connType  = reflect.TypeFor[*mpq.Conn]()
	fileType  = reflect.TypeFor[*os.File]()
)

// check returns why fn cannot be defined as name, or nil.
func check(name string, fn any) error {
	if name == "" {
		return fmt.Errorf("%w: empty name", ErrInvalidFunc)
	}
	v := reflect.ValueOf(fn)
	if v.Kind() != reflect.Func || v.IsNil() {
		return fmt.Errorf("%w: %s is %T; want a func(context.Context, ...) error", ErrInvalidFunc, name, fn)
	}
	t := v.Type()
	if t.NumIn() == 0 || t.In(0) != ctxType {
		return fmt.Errorf("%w: %s is %v; its first parameter must be a context.Context", ErrInvalidFunc, name, t)
	}
	if t.NumOut() > 1 || t.NumOut() == 1 && t.Out(0) != errorType {
		return fmt.Errorf("%w: %s is %v; it must return an error or nothing", ErrInvalidFunc, name, t)
	}
	for i := 1; i < t.NumIn(); i++ {
		p := t.In(i)
		if t.IsVariadic() && i == t.NumIn()-1 {
			p = p.Elem()
		}
		if why := unfit(p); why != "" {
			return fmt.Errorf("%w: parameter %d of %s has type %v: %s", ErrInvalidFunc, i, name, p, why)
		}
	}
	return nil
}

// unfit says why a parameter of type p cannot receive an argument from
// another process, or returns "". Other types that CBOR cannot encode are
// found by Start, which tries.
func unfit(p reflect.Type) string {
	if p == queueType || p == connType || p == fileType || p.Kind() == reflect.Interface {
		return ""
	}
	switch p.Kind() {
	case reflect.Chan, reflect.Func, reflect.UnsafePointer:
		return fmt.Sprintf("a %v cannot be sent to another process", p.Kind())
	}
	return holdsResource(p)
}

// holdsResource says which queue, conn or file type a plain value of type t
// holds, which would not survive the trip, or returns "".
func holdsResource(t reflect.Type) string {
	return within(t, func(t reflect.Type) string {
		switch t {
		case queueType, connType, fileType:
			return fmt.Sprintf("it holds a %v; pass queues, conns and files as arguments of their own", t)
		}
		if t.Kind() == reflect.Struct && t.PkgPath() == mpqPath && !hasExported(t) {
			// A TypedQueue, TypedConn, Listener...: only its state, which
			// does not travel, makes it what it is.
			return fmt.Sprintf("a %v cannot be sent to another process; pass its *mpq.Queue or *mpq.Conn and make the view there", t)
		}
		return ""
	})
}

// within returns what bad says of t or of the first type inside a value of
// t that it refuses (elements, keys, exported fields: what travels as
// CBOR), or "".
func within(t reflect.Type, bad func(reflect.Type) string) string {
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type) string
	walk = func(t reflect.Type) string {
		if seen[t] {
			return ""
		}
		seen[t] = true
		if why := bad(t); why != "" {
			return why
		}
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array:
			return walk(t.Elem())
		case reflect.Map:
			if why := walk(t.Key()); why != "" {
				return why
			}
			return walk(t.Elem())
		case reflect.Struct:
			for i := range t.NumField() {
				if f := t.Field(i); f.IsExported() {
					if why := walk(f.Type); why != "" {
						return why
					}
				}
			}
		}
		return ""
	}
	return walk(t)
}

// mpqPath is the import path of package mpq.
var mpqPath = queueType.Elem().PkgPath()

// hasExported reports whether struct type t has an exported field.
func hasExported(t reflect.Type) bool {
	for i := range t.NumField() {
		if t.Field(i).IsExported() {
			return true
		}
	}
	return false
}

// Name returns the name the function was defined with.
func (f *Func) Name() string { return f.name }

// String returns "proc.Func(name)".
func (f *Func) String() string { return "proc.Func(" + f.name + ")" }

// Err returns the error that made Define refuse the function (wrapping
// [ErrInvalidFunc]), or nil. A program may check it at start up.
func (f *Func) Err() error { return f.err }

// Start starts a child process that runs the function with args and
// returns at once. It is StartWith with nil Options: see there.
func (f *Func) Start(ctx context.Context, args ...any) (*Process, error) {
	return f.StartWith(ctx, nil, args...)
}

// StartWith starts a child process, a new instance of this program, that
// runs the function with a context and args, then exits; it returns at
// once with a handle on the child. opts may be nil.
//
// The arguments must match the function's parameters in number and type,
// or StartWith returns an error wrapping [ErrInvalidArgs] and starts
// nothing. Each one arrives in the child ready to use:
//
//   - A *mpq.Queue (named or anonymous) is handed over as a descriptor and
//     opened in the child; the parameter's type must be *mpq.Queue or an
//     interface it implements.
//   - A *mpq.Conn end is handed over likewise. As with Python's Pipe, the
//     parent should Close its own copy of an end it hands to a child,
//     otherwise the peer sees no io.EOF when the child exits.
//   - An *os.File is inherited by the child; the parent keeps its own,
//     which it may close at any time after StartWith returns.
//   - Any other value is encoded as CBOR (github.com/fxamacker/cbor/v2)
//     and decoded into the parameter's type, which must be concrete: an
//     int argument fits an int64 parameter, a string does not. As with
//     encoding/json, only the exported fields of a struct travel (cbor and
//     json field tags apply), and a time.Time keeps its nanoseconds.
//   - nil is the zero value of a pointer, slice, map or interface
//     parameter.
//
// The child's queues, conns and files are its own: [Main] closes them when
// the function returns. The parent closes the descriptors it made for the
// child once the child has started; no argument's size is limited by the
// command line or environment.
//
// Unless opts.Detached is set, the child is terminated (see [Options.Grace])
// when ctx is cancelled or this process dies. ctx does not otherwise reach
// the child: the function's context is the child's own, cancelled by
// [Process.Terminate].
//
// The child is reaped in the background, so it never lingers as a zombie
// whether or not anyone calls Wait.
//
// Besides ErrInvalidArgs, StartWith fails with the error recorded by Define
// (wrapping [ErrInvalidFunc]), with [ErrNoMain] in a program that did not
// call Main, with [ErrUnknownFunc] for a function defined after Main ran,
// and with ctx.Err() if ctx is done already. When the system refuses what
// starting takes, the error matches [mpq.ErrTooManyFiles] (this process is
// at its limit of open descriptors, RLIMIT_NOFILE) or [mpq.ErrNoMemory],
// as well as the system's error number, and says how to fix it. A Start
// that fails leaves nothing behind: no descriptor, and no child process.
func (f *Func) StartWith(ctx context.Context, opts *Options, args ...any) (*Process, error) {
	if err := f.startable(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	a, err := f.prepare(args)
	if err != nil {
		return nil, err
	}
	defer a.release()
	return start(ctx, f, opts, a)
}

// startable returns why f cannot be started in this process, or nil.
func (f *Func) startable() error {
	switch {
	case f == nil:
		return fmt.Errorf("%w: nil *Func", ErrInvalidFunc)
	case f.err != nil:
		return f.err
	case os.Getenv(envChild) != "":
		// A child whose main did not start with Main: starting another
		// would repeat that forever.
		return fmt.Errorf("%w: this is a child process started for a function, running main instead", ErrNoMain)
	case !mainCalled.Load():
		return ErrNoMain
	case f.late:
		return fmt.Errorf("%w: %q was defined after Main ran, so a child process never defines it; define it in a package-level variable", ErrUnknownFunc, f.name)
	}
	return nil
}
