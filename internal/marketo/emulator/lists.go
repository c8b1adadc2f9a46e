package emulator

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"
)

// staticList is a static list: an asset in a folder, and a set of leads.
type staticList struct {
	id          int64
	name        string
	description string
	folder      folderRef
	created     time.Time
	updated     time.Time
	members     *memberSet
}

// Errors of the Go and seeding APIs.
var (
	// ErrFolderNotFound reports a folder ID that names no folder.
	ErrFolderNotFound = errors.New("folder not found")
	// ErrListNotFound reports a list ID that names no static list.
	ErrListNotFound = errors.New("static list not found")
	// ErrListExists reports a static list name already in use.
	ErrListExists = errors.New("static list with the same name already exists")
	// ErrLeadNotFound reports a lead ID that names no lead.
	ErrLeadNotFound = errors.New("lead not found")
)

// createListLocked creates a static list; Marketo requires unique names.
func (e *Emulator) createListLocked(name, description string, ref folderRef, now time.Time) (*staticList, error) {
	if _, ok := e.listByName[name]; ok {
		return nil, fmt.Errorf("creating static list %q: %w", name, ErrListExists)
	}
	f, ok := e.folders[ref.ID]
	if !ok || f.typ != ref.Type {
		return nil, fmt.Errorf("creating static list %q in folder %d: %w", name, ref.ID, ErrFolderNotFound)
	}
	l := &staticList{
		id: e.nextList, name: name, description: description, folder: ref,
		created: now, updated: now, members: newMemberSet(),
	}
	e.nextList++
	e.lists[l.id] = l
	e.listByName[name] = l.id
	return l, nil
}

// CreateStaticList creates a static list named name in the folder (or
// program) folderID and returns its ID. It panics when the name is taken or
// the folder does not exist: in tests, both are mistakes in the test itself.
func (e *Emulator) CreateStaticList(name string, folderID int64) int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	ref := folderRef{ID: folderID, Type: "Folder"}
	if f, ok := e.folders[folderID]; ok {
		ref.Type = f.typ
	}
	l, err := e.createListLocked(name, "", ref, e.now())
	if err != nil {
		panic("emulator: " + err.Error())
	}
	return l.id
}

// DeleteStaticList deletes a static list and its memberships; it reports
// whether the list existed.
func (e *Emulator) DeleteStaticList(listID int64) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.advanceLocked(e.now())
	return e.deleteListLocked(listID)
}

func (e *Emulator) deleteListLocked(listID int64) bool {
	l, ok := e.lists[listID]
	if !ok {
		return false
	}
	delete(e.lists, listID)
	delete(e.listByName, l.name)
	return true
}

// AddListMembers adds leads to a static list. It panics when the list or a
// lead does not exist.
func (e *Emulator) AddListMembers(listID int64, leadIDs ...int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.advanceLocked(e.now())
	if err := e.addMembersLocked(listID, leadIDs); err != nil {
		panic("emulator: AddListMembers: " + err.Error())
	}
}

func (e *Emulator) addMembersLocked(listID int64, leadIDs []int64) error {
	l, ok := e.lists[listID]
	if !ok {
		return fmt.Errorf("list %d: %w", listID, ErrListNotFound)
	}
	for _, id := range leadIDs {
		if e.leads.get(id) == nil {
			return fmt.Errorf("lead %d: %w", id, ErrLeadNotFound)
		}
	}
	for _, id := range leadIDs {
		l.members.add(id)
	}
	l.updated = e.now()
	return nil
}

// RemoveListMembers removes leads from a static list; unknown leads and
// non-members are ignored. It panics when the list does not exist.
func (e *Emulator) RemoveListMembers(listID int64, leadIDs ...int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.advanceLocked(e.now())
	l, ok := e.lists[listID]
	if !ok {
		panic(fmt.Sprintf("emulator: RemoveListMembers: list %d: %v", listID, ErrListNotFound))
	}
	for _, id := range leadIDs {
		l.members.remove(id)
	}
}

// ListMembers returns the members of a static list sorted by ID, or nil
// when the list does not exist.
func (e *Emulator) ListMembers(listID int64) []Lead {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.advanceLocked(e.now())
	l, ok := e.lists[listID]
	if !ok {
		return nil
	}
	ids := l.members.all()
	out := make([]Lead, len(ids))
	for i, id := range ids {
		out[i] = e.leadLocked(id)
	}
	return out
}

// ListMemberIDs returns the lead IDs of a static list's members sorted, or
// nil when the list does not exist. It is cheaper than ListMembers for big
// lists.
func (e *Emulator) ListMemberIDs(listID int64) []int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.advanceLocked(e.now())
	l, ok := e.lists[listID]
	if !ok {
		return nil
	}
	return l.members.all()
}

// StaticList describes a static list for the Go API.
type StaticList struct {
	ID       int64
	Name     string
	FolderID int64
	Members  int
}

// StaticLists returns every static list, sorted by ID.
func (e *Emulator) StaticLists() []StaticList {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.advanceLocked(e.now())
	out := make([]StaticList, 0, len(e.lists))
	for _, id := range slices.Sorted(maps.Keys(e.lists)) {
		l := e.lists[id]
		out = append(out, StaticList{ID: l.id, Name: l.name, FolderID: l.folder.ID, Members: l.members.len()})
	}
	return out
}

// leadDBList is a static list as the Lead Database API shows it.
type leadDBList struct {
	ID            int64  `json:"id"`
	Name          string `json:"name"`
	Description   string `json:"description"`
	ProgramName   string `json:"programName,omitempty"`
	WorkspaceID   int    `json:"workspaceId"`
	WorkspaceName string `json:"workspaceName"`
	CreatedAt     string `json:"createdAt"`
	UpdatedAt     string `json:"updatedAt"`
}

func (e *Emulator) leadDBListJSON(l *staticList) leadDBList {
	out := leadDBList{
		ID: l.id, Name: l.name, Description: l.description, WorkspaceID: 1, WorkspaceName: "Default",
		CreatedAt: l.created.UTC().Format(time.RFC3339), UpdatedAt: l.updated.UTC().Format(time.RFC3339),
	}
	if f, ok := e.folders[l.folder.ID]; ok && f.typ == "Program" {
		out.ProgramName = f.name
	}
	return out
}

// listOr1013 returns the list named by the path, or the Lead Database's
// not-found answer.
func (c *call) listOr1013() (*staticList, *response) {
	l, ok := c.e.lists[c.pathID(0)]
	if !ok {
		r := c.fail("1013", "Static list not found")
		return nil, &r
	}
	return l, nil
}

// hGetList answers GET /rest/v1/lists/{id}.json.
func (e *Emulator) hGetList(c *call) response {
	l, bad := c.listOr1013()
	if bad != nil {
		return *bad
	}
	return c.ok([]leadDBList{e.leadDBListJSON(l)})
}

// hGetLists answers GET /rest/v1/lists.json with the optional filters id,
// name, programName and workspaceName (each comma-separated or repeated).
func (e *Emulator) hGetLists(c *call) response {
	size, after, bad := c.paging("lists")
	if bad != nil {
		return *bad
	}
	set := func(name string) map[string]bool {
		vs := splitList(c.params[name])
		if len(vs) == 0 {
			return nil
		}
		m := make(map[string]bool, len(vs))
		for _, v := range vs {
			m[v] = true
		}
		return m
	}
	ids, names, programs, workspaces := set("id"), set("name"), set("programName"), set("workspaceName")
	var result []leadDBList
	next := ""
	for _, id := range slices.Sorted(maps.Keys(e.lists)) {
		if id <= after || ids != nil && !ids[strconv.FormatInt(id, 10)] {
			continue
		}
		l := e.lists[id]
		j := e.leadDBListJSON(l)
		if names != nil && !names[l.name] || programs != nil && !programs[j.ProgramName] ||
			workspaces != nil && !workspaces[j.WorkspaceName] {
			continue
		}
		if len(result) == size {
			next = encodePageToken("lists", result[size-1].ID)
			break
		}
		result = append(result, j)
	}
	if result == nil {
		result = []leadDBList{}
	}
	return c.okPaged(result, next)
}

// memberResult is one entry of a membership call's result.
type memberResult struct {
	ID      int64      `json:"id"`
	Status  string     `json:"status"`
	Reasons []apiError `json:"reasons,omitempty"`
}

// memberIDs parses and checks the lead IDs of a membership call.
func (c *call) memberIDs() ([]int64, *response) {
	ids, err := parseIDs(c.params["id"], c.body)
	if err != nil {
		code := "1003"
		if errors.Is(err, errInvalidJSON) {
			code = "609"
		}
		r := c.fail(code, err.Error())
		return nil, &r
	}
	if len(ids) == 0 {
		r := c.fail("701", "id cannot be blank")
		return nil, &r
	}
	if len(ids) > MaxBatch {
		r := c.fail("1003", fmt.Sprintf("Invalid data: %d ids given, at most %d allowed", len(ids), MaxBatch))
		return nil, &r
	}
	return ids, nil
}

// eachMember answers a call on the membership of the leads whose ids the
// request names: 1013 for a list that does not exist, "skipped" with 1004 for
// an id no lead has, and op's answer for every other lead. A call that
// changes the list (touch) marks it updated.
func (e *Emulator) eachMember(c *call, touch bool, op func(l *staticList, id int64) memberResult) response {
	l, bad := c.listOr1013()
	if bad != nil {
		return *bad
	}
	ids, bad := c.memberIDs()
	if bad != nil {
		return *bad
	}
	out := make([]memberResult, len(ids))
	for i, id := range ids {
		if e.leads.get(id) == nil {
			out[i] = memberResult{ID: id, Status: "skipped", Reasons: []apiError{{"1004", "Lead not found"}}}
			continue
		}
		out[i] = op(l, id)
	}
	if touch {
		l.updated = c.now
	}
	return c.ok(out)
}

// hAddMembers answers POST /rest/v1/lists/{id}/leads.json. Adding a lead
// that is already a member answers "added" again.
func (e *Emulator) hAddMembers(c *call) response {
	return e.eachMember(c, true, func(l *staticList, id int64) memberResult {
		l.members.add(id)
		return memberResult{ID: id, Status: "added"}
	})
}

// hRemoveMembers answers DELETE /rest/v1/lists/{id}/leads.json: "removed",
// or "skipped" with 1004 (no such lead) or 1015 (not in the list).
func (e *Emulator) hRemoveMembers(c *call) response {
	return e.eachMember(c, true, func(l *staticList, id int64) memberResult {
		if !l.members.remove(id) {
			return memberResult{ID: id, Status: "skipped", Reasons: []apiError{{"1015", "Lead not in list"}}}
		}
		return memberResult{ID: id, Status: "removed"}
	})
}

// hIsMember answers GET /rest/v1/lists/{id}/leads/ismember.json.
func (e *Emulator) hIsMember(c *call) response {
	return e.eachMember(c, false, func(l *staticList, id int64) memberResult {
		if l.members.has(id) {
			return memberResult{ID: id, Status: "memberof"}
		}
		return memberResult{ID: id, Status: "notmemberof"}
	})
}

// hGetMembers answers GET /rest/v1/lists/{id}/leads.json (and the legacy
// /rest/v1/list/{id}/leads.json): members in ID order, paged.
func (e *Emulator) hGetMembers(c *call) response {
	l, bad := c.listOr1013()
	if bad != nil {
		return *bad
	}
	fields, bad := c.fieldsParam()
	if bad != nil {
		return *bad
	}
	size, after, bad := c.paging("members")
	if bad != nil {
		return *bad
	}
	ids, more := l.members.page(after, size)
	result := make([]map[string]any, len(ids))
	for i, id := range ids {
		result[i] = e.leadJSON(id, fields)
	}
	next := ""
	if more {
		next = encodePageToken("members", ids[len(ids)-1])
	}
	return c.okPaged(result, next)
}
