package rls

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Provider is the external auth provider. It changes only what is generated for the database
// around the tables: Better Auth keeps its own tables in the better_auth schema, which must stay
// closed to the API roles.
type Provider string

// Supported providers.
const (
	ProviderClerk      Provider = "clerk"
	ProviderAuth0      Provider = "auth0"
	ProviderWorkOS     Provider = "workos"
	ProviderKinde      Provider = "kinde"
	ProviderStytch     Provider = "stytch"
	ProviderBetterAuth Provider = "betterAuth"
)

// Command is a policy command.
type Command string

// Policy commands, in the order they are generated.
const (
	CommandSelect Command = "select"
	CommandInsert Command = "insert"
	CommandUpdate Command = "update"
	CommandDelete Command = "delete"
)

// AllCommands lists every command in generation order.
var AllCommands = []Command{CommandSelect, CommandInsert, CommandUpdate, CommandDelete}

// Names the generated SQL depends on.
const (
	// DefaultUserIDColumn is the column holding the provider's user id.
	DefaultUserIDColumn = "user_id"
	// DefaultSchema is where tables live unless a Table says otherwise.
	DefaultSchema = "public"
	// BetterAuthSchema holds Better Auth's own tables.
	BetterAuthSchema = "better_auth"
	// RoleAuthenticated is the role PostgREST switches to for signed-in users.
	RoleAuthenticated = "authenticated"
	// RoleAnon is the role PostgREST uses without a token.
	RoleAnon = "anon"
)

// maxIdentifier is PostgreSQL's NAMEDATALEN-1: longer names are silently truncated by the server,
// which would make every observation disagree with the desired name.
const maxIdentifier = 63

// Spec is the desired state of one integration. The controller maps the CRD into it.
type Spec struct {
	// Name prefixes every policy name (usually the resource name).
	Name string
	// Owner identifies the integration uniquely across the database (usually namespace/name). It
	// is written into policy comments and keys the advisory lock.
	Owner string
	// Provider selects provider-specific statements.
	Provider Provider
	// Role, if set, is assumed with SET LOCAL ROLE for apply and teardown (InsForge expects
	// project_admin to own objects in public).
	Role string
	// Tables are the user-owned tables to protect.
	Tables []Table
}

// Table is one user-owned table.
type Table struct {
	// Schema defaults to public.
	Schema string
	// Name is the table name.
	Name string
	// UserIDColumn defaults to user_id.
	UserIDColumn string
	// Commands to write policies for; empty means all four.
	Commands []Command
	// ManageColumn adds the user id column when it is missing.
	ManageColumn bool
	// Create creates the table (id, user id, created_at) when it is missing.
	Create bool
}

// TableRef names a table.
type TableRef struct {
	Schema, Name string
}

// String renders the reference for humans, unquoted; SQL uses ident.
func (r TableRef) String() string { return r.Schema + "." + r.Name }

func (r TableRef) ident() string { return ident(r.Schema, r.Name) }

// Ref returns the table's reference with defaults applied.
func (t Table) Ref() TableRef {
	s := t.Schema
	if s == "" {
		s = DefaultSchema
	}
	return TableRef{Schema: s, Name: t.Name}
}

// Column returns the user id column with the default applied.
func (t Table) Column() string {
	if t.UserIDColumn == "" {
		return DefaultUserIDColumn
	}
	return t.UserIDColumn
}

// Cmds returns the commands with the default applied, in generation order.
func (t Table) Cmds() []Command {
	if len(t.Commands) == 0 {
		return AllCommands
	}
	var out []Command
	for _, c := range AllCommands {
		for _, want := range t.Commands {
			if c == want {
				out = append(out, c)
				break
			}
		}
	}
	return out
}

func (t Table) has(c Command) bool {
	for _, x := range t.Cmds() {
		if x == c {
			return true
		}
	}
	return false
}

// PolicyName is the name of this integration's policy for a table and command:
// <integration>_<table>_<command>, shortened with a hash suffix when it would exceed 63 bytes.
func (s Spec) PolicyName(t Table, c Command) string {
	return fitIdentifier(s.Name + "_" + t.Name + "_" + string(c))
}

// IndexName is the name given to the user id index created for a table.
func IndexName(t Table) string {
	return fitIdentifier(t.Name + "_" + t.Column() + "_idx")
}

// fitIdentifier keeps names within PostgreSQL's limit, deterministically and without collisions
// between long names that share a prefix.
func fitIdentifier(name string) string {
	if len(name) <= maxIdentifier {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	suffix := "_" + hex.EncodeToString(sum[:4])
	cut := maxIdentifier - len(suffix)
	// Do not split a multi-byte rune.
	for cut > 0 && !isRuneStart(name[cut]) {
		cut--
	}
	return name[:cut] + suffix
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// Validate reports every problem with the spec. A spec error is terminal.
func (s Spec) Validate() error {
	var errs []error
	if s.Name == "" {
		errs = append(errs, errors.New("name is empty"))
	}
	if s.Owner == "" {
		errs = append(errs, errors.New("owner is empty"))
	}
	switch s.Provider {
	case ProviderClerk, ProviderAuth0, ProviderWorkOS, ProviderKinde, ProviderStytch, ProviderBetterAuth:
	default:
		errs = append(errs, fmt.Errorf("unknown provider %q", s.Provider))
	}
	seen := map[TableRef]bool{}
	for i, t := range s.Tables {
		ref := t.Ref()
		for _, f := range [][2]string{{"schema", ref.Schema}, {"name", ref.Name}, {"user id column", t.Column()}} {
			if err := checkIdentifier(f[1]); err != nil {
				errs = append(errs, fmt.Errorf("tables[%d] %s: %w", i, f[0], err))
			}
		}
		if seen[ref] {
			errs = append(errs, fmt.Errorf("tables[%d]: %s is listed twice", i, ref))
		}
		seen[ref] = true
		if ref.Schema == BetterAuthSchema {
			errs = append(errs, fmt.Errorf("tables[%d]: %s is in the better_auth schema, which must stay closed to the API roles", i, ref))
		}
		for _, c := range t.Commands {
			if !validCommand(c) {
				errs = append(errs, fmt.Errorf("tables[%d]: unknown command %q", i, c))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return &SpecError{Err: err}
	}
	return nil
}

func validCommand(c Command) bool {
	for _, x := range AllCommands {
		if c == x {
			return true
		}
	}
	return false
}

func checkIdentifier(name string) error {
	switch {
	case name == "":
		return errors.New("empty")
	case len(name) > maxIdentifier:
		return fmt.Errorf("%q is longer than %d bytes", name, maxIdentifier)
	case strings.ContainsRune(name, 0):
		return fmt.Errorf("%q contains a NUL byte", name)
	}
	return nil
}
