package emulator

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// folder is a Marketing Folder (or a program) that holds static lists.
type folder struct {
	id          int64
	name        string
	description string
	typ         string // "Folder" or "Program"
	parent      int64  // 0 at the top
	created     time.Time
	updated     time.Time
}

// assetTime formats a time as the Asset API does: "2017-07-27T01:38:33Z+0000".
func assetTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05Z-0700")
}

// CreateFolder creates a top-level Marketing Folder named name and returns
// its ID. Names need not be unique (Marketo allows the same name in
// different places), so calling it twice gives two folders.
func (e *Emulator) CreateFolder(name string) int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.createFolderLocked(name, "", 0, "Folder", e.now()).id
}

// CreateProgram creates a program (a folder of type Program) named name and
// returns its ID; static lists can live in programs too.
func (e *Emulator) CreateProgram(name string) int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.createFolderLocked(name, "", 0, "Program", e.now()).id
}

func (e *Emulator) createFolderLocked(name, description string, parent int64, typ string, now time.Time) *folder {
	f := &folder{id: e.nextFolder, name: name, description: description, typ: typ, parent: parent, created: now, updated: now}
	e.nextFolder++
	e.folders[f.id] = f
	return f
}

// Folder describes a folder for the Go API.
type Folder struct {
	ID   int64
	Name string
	Type string // "Folder" or "Program"
}

// Folders returns every folder, sorted by ID.
func (e *Emulator) Folders() []Folder {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Folder, 0, len(e.folders))
	for _, id := range slices.Sorted(maps.Keys(e.folders)) {
		f := e.folders[id]
		out = append(out, Folder{ID: f.id, Name: f.name, Type: f.typ})
	}
	return out
}

// assetList is a static list as the Asset API shows it.
type assetList struct {
	ID          int64     `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	CreatedAt   string    `json:"createdAt"`
	UpdatedAt   string    `json:"updatedAt"`
	URL         string    `json:"url"`
	Folder      folderRef `json:"folder"`
	Workspace   string    `json:"workspace"`
	ComputedURL string    `json:"computedUrl"`
}

func (e *Emulator) assetListJSON(l *staticList) assetList {
	u := fmt.Sprintf("%s/#ST%dA1", e.cfg.InstanceURL, l.id)
	return assetList{
		ID: l.id, Name: l.name, Description: l.description,
		CreatedAt: assetTime(l.created), UpdatedAt: assetTime(l.updated),
		URL: u, Folder: l.folder, Workspace: "Default", ComputedURL: u,
	}
}

// assetFolder is a folder as the Asset API shows it.
type assetFolder struct {
	Name        string     `json:"name"`
	Description string     `json:"description"`
	CreatedAt   string     `json:"createdAt"`
	UpdatedAt   string     `json:"updatedAt"`
	URL         string     `json:"url"`
	FolderID    folderRef  `json:"folderId"`
	FolderType  string     `json:"folderType"`
	Parent      *folderRef `json:"parent"`
	Path        string     `json:"path"`
	IsArchive   bool       `json:"isArchive"`
	IsSystem    bool       `json:"isSystem"`
	AccessZone  int        `json:"accessZoneId"`
	Workspace   string     `json:"workspace"`
	ID          int64      `json:"id"`
}

func (e *Emulator) assetFolderJSON(f *folder) assetFolder {
	path := f.name
	var parent *folderRef
	for p, guard := f.parent, 0; p != 0 && guard < 100; guard++ {
		pf, ok := e.folders[p]
		if !ok {
			break
		}
		if parent == nil {
			parent = &folderRef{ID: pf.id, Type: pf.typ}
		}
		path = pf.name + "/" + path
		p = pf.parent
	}
	ftype := "Marketing Folder"
	if f.typ == "Program" {
		ftype = "Marketing Program"
	}
	return assetFolder{
		Name: f.name, Description: f.description,
		CreatedAt: assetTime(f.created), UpdatedAt: assetTime(f.updated),
		URL:      fmt.Sprintf("%s/#MF%dA1", e.cfg.InstanceURL, f.id),
		FolderID: folderRef{ID: f.id, Type: f.typ}, FolderType: ftype, Parent: parent,
		Path: "/Lead Database/Group Lists/" + path, AccessZone: 1, Workspace: "Default", ID: f.id,
	}
}

// hGetStaticList answers GET /rest/asset/v1/staticList/{id}.json.
func (e *Emulator) hGetStaticList(c *call) response {
	l, ok := e.lists[c.pathID(0)]
	if !ok {
		return c.notFound()
	}
	return c.ok([]assetList{e.assetListJSON(l)})
}

// hStaticListByName answers GET /rest/asset/v1/staticList/byName.json
// (exact name match).
func (e *Emulator) hStaticListByName(c *call) response {
	name := c.params.Get("name")
	if strings.TrimSpace(name) == "" {
		return c.fail("701", "name cannot be blank")
	}
	id, ok := e.listByName[name]
	if !ok {
		return c.notFound()
	}
	return c.ok([]assetList{e.assetListJSON(e.lists[id])})
}

// parseAssetTime parses earliestUpdatedAt / latestUpdatedAt.
func parseAssetTime(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05Z0700", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// offsetMax parses offset and maxReturn (default 20, at most 200).
func (c *call) offsetMax() (offset, maxReturn int, bad *response) {
	maxReturn = 20
	if s := c.param("maxReturn"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 200 {
			r := c.fail("1003", fmt.Sprintf("Invalid data: maxReturn '%s' must be between 1 and 200", s))
			return 0, 0, &r
		}
		maxReturn = n
	}
	if s := c.param("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			r := c.fail("1003", fmt.Sprintf("Invalid data: offset '%s' must be a non-negative integer", s))
			return 0, 0, &r
		}
		offset = n
	}
	return offset, maxReturn, nil
}

// hBrowseStaticLists answers GET /rest/asset/v1/staticLists.json.
func (e *Emulator) hBrowseStaticLists(c *call) response {
	offset, maxReturn, bad := c.offsetMax()
	if bad != nil {
		return *bad
	}
	var inFolder *folderRef
	if s := c.param("folder"); s != "" {
		ref, err := parseFolderParam(s)
		if err != nil {
			return c.fail("1003", err.Error())
		}
		inFolder = &ref
	}
	var earliest, latest time.Time
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"earliestUpdatedAt", &earliest}, {"latestUpdatedAt", &latest}} {
		if s := c.param(p.name); s != "" {
			t, ok := parseAssetTime(s)
			if !ok {
				return c.fail("704", fmt.Sprintf("Invalid date format: %s '%s'", p.name, s))
			}
			*p.t = t
		}
	}
	var out []assetList
	skip := offset
	for _, id := range slices.Sorted(maps.Keys(e.lists)) {
		l := e.lists[id]
		if inFolder != nil && l.folder != *inFolder ||
			!earliest.IsZero() && l.updated.Before(earliest) || !latest.IsZero() && l.updated.After(latest) {
			continue
		}
		if skip > 0 {
			skip--
			continue
		}
		if len(out) == maxReturn {
			break
		}
		out = append(out, e.assetListJSON(l))
	}
	if len(out) == 0 {
		return c.notFound()
	}
	return c.ok(out)
}

// hCreateStaticList answers POST /rest/asset/v1/staticLists.json: name and
// folder (a JSON object or a bare ID) in the form body or the query string.
// A duplicate name answers 709.
func (e *Emulator) hCreateStaticList(c *call) response {
	name := strings.TrimSpace(c.params.Get("name"))
	if name == "" {
		return c.fail("701", "name cannot be blank")
	}
	fs := c.param("folder")
	if fs == "" {
		return c.fail("701", "folder cannot be blank")
	}
	ref, err := parseFolderParam(fs)
	if err != nil {
		return c.fail("1003", err.Error())
	}
	if _, ok := e.listByName[name]; ok {
		return c.fail("709", "Static List with the same name already exists")
	}
	if f, ok := e.folders[ref.ID]; !ok || f.typ != ref.Type {
		return c.fail("710", "Parent folder not found")
	}
	l, err := e.createListLocked(name, c.params.Get("description"), ref, c.now)
	if err != nil {
		return c.fail("709", err.Error())
	}
	return c.ok([]assetList{e.assetListJSON(l)})
}

// hUpdateStaticList answers POST /rest/asset/v1/staticList/{id}.json (name,
// description).
func (e *Emulator) hUpdateStaticList(c *call) response {
	l, ok := e.lists[c.pathID(0)]
	if !ok {
		return c.notFound()
	}
	if _, set := c.params["name"]; set {
		name := strings.TrimSpace(c.params.Get("name"))
		if name == "" {
			return c.fail("701", "name cannot be blank")
		}
		if other, ok := e.listByName[name]; ok && other != l.id {
			return c.fail("709", "Static List with the same name already exists")
		}
		delete(e.listByName, l.name)
		l.name = name
		e.listByName[name] = l.id
	}
	if _, set := c.params["description"]; set {
		l.description = c.params.Get("description")
	}
	l.updated = c.now
	return c.ok([]assetList{e.assetListJSON(l)})
}

// hDeleteStaticList answers POST /rest/asset/v1/staticList/{id}/delete.json.
// A list that an unfinished bulk import or extract uses cannot be deleted.
func (e *Emulator) hDeleteStaticList(c *call) response {
	id := c.pathID(0)
	if _, ok := e.lists[id]; !ok {
		return c.notFound()
	}
	if e.listBusyLocked(id) {
		return c.fail("709", "Static list is in use by an import or an export and cannot be deleted")
	}
	e.deleteListLocked(id)
	return c.ok([]map[string]int64{{"id": id}})
}

// foldersMatching returns the folders passing the name, type and root
// filters, sorted by ID.
func (e *Emulator) foldersMatching(name, typ string, root *folderRef) []*folder {
	var out []*folder
	for _, id := range slices.Sorted(maps.Keys(e.folders)) {
		f := e.folders[id]
		if name != "" && f.name != name || typ != "" && !strings.EqualFold(f.typ, typ) {
			continue
		}
		if root != nil && !e.under(f, root.ID) {
			continue
		}
		out = append(out, f)
	}
	return out
}

// under reports whether f is root or lies below it.
func (e *Emulator) under(f *folder, root int64) bool {
	for guard := 0; f != nil && guard < 100; guard++ {
		if f.id == root {
			return true
		}
		f = e.folders[f.parent]
	}
	return false
}

// folderFilters parses the type and root parameters of folder searches.
func (c *call) folderFilters() (typ string, root *folderRef, bad *response) {
	typ = c.param("type")
	if typ != "" && !strings.EqualFold(typ, "Folder") && !strings.EqualFold(typ, "Program") {
		r := c.fail("1003", fmt.Sprintf("Invalid data: type '%s' must be Folder or Program", typ))
		return "", nil, &r
	}
	if s := c.param("root"); s != "" {
		ref, err := parseFolderParam(s)
		if err != nil {
			r := c.fail("1003", err.Error())
			return "", nil, &r
		}
		root = &ref
	}
	return typ, root, nil
}

// hFolderByName answers GET /rest/asset/v1/folder/byName.json: every folder
// with exactly that name.
func (e *Emulator) hFolderByName(c *call) response {
	name := c.params.Get("name")
	if strings.TrimSpace(name) == "" {
		return c.fail("701", "name cannot be blank")
	}
	typ, root, bad := c.folderFilters()
	if bad != nil {
		return *bad
	}
	fs := e.foldersMatching(name, typ, root)
	if len(fs) == 0 {
		return c.notFound()
	}
	out := make([]assetFolder, len(fs))
	for i, f := range fs {
		out[i] = e.assetFolderJSON(f)
	}
	return c.ok(out)
}

// hGetFolder answers GET /rest/asset/v1/folder/{id}.json (type defaults to
// Folder).
func (e *Emulator) hGetFolder(c *call) response {
	typ := cmp.Or(c.param("type"), "Folder")
	f, ok := e.folders[c.pathID(0)]
	if !ok || !strings.EqualFold(f.typ, typ) {
		return c.notFound()
	}
	return c.ok([]assetFolder{e.assetFolderJSON(f)})
}

// hBrowseFolders answers GET /rest/asset/v1/folders.json.
func (e *Emulator) hBrowseFolders(c *call) response {
	offset, maxReturn, bad := c.offsetMax()
	if bad != nil {
		return *bad
	}
	typ, root, bad := c.folderFilters()
	if bad != nil {
		return *bad
	}
	fs := e.foldersMatching("", typ, root)
	fs = fs[min(offset, len(fs)):]
	fs = fs[:min(maxReturn, len(fs))]
	if len(fs) == 0 {
		return c.notFound()
	}
	out := make([]assetFolder, len(fs))
	for i, f := range fs {
		out[i] = e.assetFolderJSON(f)
	}
	return c.ok(out)
}

// hCreateFolder answers POST /rest/asset/v1/folders.json (name, optional
// parent, description). Folder names are unique within a parent (709).
func (e *Emulator) hCreateFolder(c *call) response {
	name := strings.TrimSpace(c.params.Get("name"))
	if name == "" {
		return c.fail("701", "name cannot be blank")
	}
	desc := c.params.Get("description")
	if len(desc) > 2000 {
		return c.fail("1003", "Invalid data: description is longer than 2000 characters")
	}
	var parent int64
	if s := c.param("parent"); s != "" {
		ref, err := parseFolderParam(s)
		if err != nil {
			return c.fail("1003", err.Error())
		}
		if _, ok := e.folders[ref.ID]; !ok {
			return c.fail("710", "Parent folder not found")
		}
		parent = ref.ID
	}
	for _, f := range e.folders {
		if f.parent == parent && f.name == name {
			return c.fail("709", "Folder with the same name already exists")
		}
	}
	f := e.createFolderLocked(name, desc, parent, "Folder", c.now)
	return c.ok([]assetFolder{e.assetFolderJSON(f)})
}
