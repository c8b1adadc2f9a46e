package marketo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"go.uber.org/zap"
)

// assetList is a static list as the Asset API returns it.
type assetList struct {
	ID     flexInt `json:"id"`
	Name   string  `json:"name"`
	Folder struct {
		ID   flexInt `json:"id"`
		Type string  `json:"type"`
	} `json:"folder"`
}

func (a assetList) list(created bool) List {
	return List{ID: int64(a.ID), Name: a.Name, FolderID: int64(a.Folder.ID), Created: created}
}

// assetFolder is a folder as folder/byName.json returns it.
type assetFolder struct {
	ID       flexInt `json:"id"`
	Name     string  `json:"name"`
	FolderID struct {
		ID   flexInt `json:"id"`
		Type string  `json:"type"`
	} `json:"folderId"`
	IsArchive bool `json:"isArchive"`
}

// ResolveList finds the static list that ref names. By ID, the list must
// exist ([ErrListNotFound] otherwise). By name, an existing list of that
// exact name is used; else the list is created in the folder ref.Folder
// ([ErrFolderNotFound] when Marketo has no such folder). When another
// process creates the same name at the same moment, the name is looked up
// again and that list is used.
func (c *Client) ResolveList(ctx context.Context, ref ListRef) (List, error) {
	lk, err := c.lookupList(ctx, ref)
	if err != nil {
		return List{}, fmt.Errorf("resolving static list%s: %w", describeRef(ref), err)
	}
	switch {
	case lk.found:
		return lk.list, nil
	case ref.ID > 0:
		return List{}, fmt.Errorf("resolving static list %d: %w: no static list has id %d", ref.ID, ErrListNotFound, ref.ID)
	}
	l, err := c.createList(ctx, lk.name, lk.folder)
	if err != nil {
		return List{}, fmt.Errorf("creating static list %q in folder %q: %w", lk.name, strings.TrimSpace(ref.Folder), err)
	}
	return l, nil
}

// FindList looks up the static list that ref names, read-only: it never
// creates anything, and it answers what [Client.ResolveList] would do.
//
// By ID, ok reports whether the list exists. By name, ok reports whether a
// list of that exact name exists; when none does, FindList also looks up
// the folder that ResolveList would create it in, and returns ok false with
// the List to be created (its Name, and the FolderID of that folder) when
// the folder exists, or an error wrapping [ErrFolderNotFound] when it does
// not ([ErrListNotFound] when ref.Folder is empty).
func (c *Client) FindList(ctx context.Context, ref ListRef) (List, bool, error) {
	lk, err := c.lookupList(ctx, ref)
	if err != nil {
		return List{}, false, fmt.Errorf("finding static list%s: %w", describeRef(ref), err)
	}
	if lk.found {
		return lk.list, true, nil
	}
	if ref.ID > 0 {
		return List{}, false, nil
	}
	return List{Name: lk.name, FolderID: lk.folder.folderID()}, false, nil
}

// listLookup is what lookupList learnt about a ListRef.
type listLookup struct {
	// name is the trimmed ref.Name.
	name string
	// list is the list, when found.
	list  List
	found bool
	// folder is where a list named by name and not found would be
	// created.
	folder assetFolder
}

// lookupList finds the list ref names, and when ref names a list by name
// that does not exist, the folder to create it in. It changes nothing. A
// list named by ID that does not exist is not an error here (found is
// false); a list named by name that cannot be created (no folder set, or no
// such folder) is.
func (c *Client) lookupList(ctx context.Context, ref ListRef) (listLookup, error) {
	name := strings.TrimSpace(ref.Name)
	switch {
	case ref.ID < 0:
		return listLookup{}, fmt.Errorf("id %d is negative", ref.ID)
	case ref.ID > 0 && name != "":
		return listLookup{}, fmt.Errorf("both id %d and name %q are set; set one", ref.ID, ref.Name)
	case ref.ID > 0:
		l, ok, err := c.listByID(ctx, ref.ID)
		return listLookup{list: l, found: ok}, err
	case name == "":
		return listLookup{}, errors.New("neither an id nor a name is set")
	}
	l, ok, err := c.listByName(ctx, name)
	if err != nil || ok {
		return listLookup{name: name, list: l, found: ok}, err
	}
	folder := strings.TrimSpace(ref.Folder)
	if folder == "" {
		return listLookup{}, fmt.Errorf("%w, and no folder is set to create it in", ErrListNotFound)
	}
	f, err := c.folderByName(ctx, folder)
	if err != nil {
		return listLookup{}, err
	}
	return listLookup{name: name, folder: f}, nil
}

// describeRef names ref in messages after "static list": a space and its
// id or quoted name, or nothing when it has neither.
func describeRef(ref ListRef) string {
	name := strings.TrimSpace(ref.Name)
	switch {
	case ref.ID != 0:
		return " " + strconv.FormatInt(ref.ID, 10)
	case name != "":
		return " " + strconv.Quote(name)
	}
	return ""
}

// listByID reads a static list; ok is false when it does not exist.
func (c *Client) listByID(ctx context.Context, id int64) (List, bool, error) {
	r := &request{
		method: http.MethodGet,
		path:   "/rest/asset/v1/staticList/" + strconv.FormatInt(id, 10) + ".json",
		label:  "GET /rest/asset/v1/staticList/{id}.json",
	}
	return c.oneList(ctx, r)
}

// listByName finds a static list by exact name; ok is false when none has it.
func (c *Client) listByName(ctx context.Context, name string) (List, bool, error) {
	r := &request{
		method:  http.MethodGet,
		path:    "/rest/asset/v1/staticList/byName.json",
		label:   "GET /rest/asset/v1/staticList/byName.json",
		query:   url.Values{"name": {name}},
		longGet: true,
	}
	l, ok, err := c.oneList(ctx, r)
	if ok && l.Name != name && !strings.EqualFold(l.Name, name) {
		return List{}, false, fmt.Errorf("looking up the list by name: Marketo answered list %d named %q", l.ID, l.Name)
	}
	return l, ok, err
}

// oneList runs a call that answers one static list or "no assets found".
func (c *Client) oneList(ctx context.Context, r *request) (List, bool, error) {
	env, err := c.call(ctx, r)
	if err != nil {
		if isNotFound(err) {
			return List{}, false, nil
		}
		return List{}, false, err
	}
	var lists []assetList
	if err := decodeResult(env, r.label, &lists); err != nil {
		return List{}, false, err
	}
	if len(lists) == 0 {
		return List{}, false, nil // success with "No assets found"
	}
	return lists[0].list(false), true, nil
}

// isNotFound reports a Marketo "object not found" (1013) or "no data" (702)
// answer, which some endpoints give instead of an empty success.
func isNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && (ae.Code == "1013" || ae.Code == "702")
}

// folderByName finds the folder to create a list in. Among several folders
// of that name, a Folder (not a Program) that is not archived wins, then the
// lowest id, so that every run picks the same one.
func (c *Client) folderByName(ctx context.Context, name string) (assetFolder, error) {
	r := &request{
		method:  http.MethodGet,
		path:    "/rest/asset/v1/folder/byName.json",
		label:   "GET /rest/asset/v1/folder/byName.json",
		query:   url.Values{"name": {name}, "type": {"Folder"}},
		longGet: true,
	}
	env, err := c.call(ctx, r)
	if err != nil && !isNotFound(err) {
		return assetFolder{}, fmt.Errorf("looking up folder %q: %w", name, err)
	}
	var folders []assetFolder
	if err == nil {
		if err := decodeResult(env, r.label, &folders); err != nil {
			return assetFolder{}, fmt.Errorf("looking up folder %q: %w", name, err)
		}
	}
	folders = slices.DeleteFunc(folders, func(f assetFolder) bool {
		return (f.Name != "" && !strings.EqualFold(strings.TrimSpace(f.Name), name)) || f.folderID() == 0
	})
	if len(folders) == 0 {
		return assetFolder{}, fmt.Errorf("%w: no folder is named %q", ErrFolderNotFound, name)
	}
	slices.SortFunc(folders, func(a, b assetFolder) int {
		if ra, rb := a.rank(), b.rank(); ra != rb {
			return ra - rb
		}
		return int(a.folderID() - b.folderID())
	})
	if len(folders) > 1 {
		c.log.Warn("several Marketo folders share the name; using the first", zap.String("folder", name),
			zap.Int64("id", folders[0].folderID()), zap.Int("matches", len(folders)))
	}
	return folders[0], nil
}

func (f assetFolder) folderID() int64 {
	if f.FolderID.ID != 0 {
		return int64(f.FolderID.ID)
	}
	return int64(f.ID)
}

func (f assetFolder) folderType() string {
	if strings.EqualFold(f.FolderID.Type, "Program") {
		return "Program"
	}
	return "Folder"
}

func (f assetFolder) rank() int {
	r := 0
	if f.folderType() != "Folder" {
		r += 2
	}
	if f.IsArchive {
		r++
	}
	return r
}

// createList creates a static list in a folder. A duplicate-name answer
// (709, or 1017 "Object already exists") means another process created it
// first: the list is looked up by name again.
func (c *Client) createList(ctx context.Context, name string, f assetFolder) (List, error) {
	folder, err := json.Marshal(map[string]any{"id": f.folderID(), "type": f.folderType()})
	if err != nil {
		return List{}, fmt.Errorf("encoding folder: %w", err)
	}
	form := url.Values{"folder": {string(folder)}, "name": {name}}
	r := &request{
		method:      http.MethodPost,
		path:        "/rest/asset/v1/staticLists.json",
		label:       "POST /rest/asset/v1/staticLists.json",
		body:        [][]byte{[]byte(form.Encode())},
		contentType: "application/x-www-form-urlencoded",
	}
	env, err := c.call(ctx, r)
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) && (ae.Code == "709" || ae.Code == "1017") {
			l, ok, lerr := c.listByName(ctx, name)
			if lerr != nil {
				return List{}, fmt.Errorf("looking the list up again after %w: %w", err, lerr)
			}
			if ok {
				c.log.Debug("static list created by another process meanwhile", zap.String("list", name), zap.Int64("id", l.ID))
				return l, nil
			}
		}
		if errors.As(err, &ae) && ae.Code == "710" {
			return List{}, fmt.Errorf("%w: %w", ErrFolderNotFound, err)
		}
		return List{}, err
	}
	var lists []assetList
	if err := decodeResult(env, r.label, &lists); err != nil {
		return List{}, err
	}
	if len(lists) == 0 || lists[0].ID == 0 {
		return List{}, fmt.Errorf("%s answered success without the new list", r.label)
	}
	c.log.Info("created static list", zap.String("list", name), zap.Int64("id", int64(lists[0].ID)), zap.Int64("folder", f.folderID()))
	return lists[0].list(true), nil
}

// decodeResult decodes env.result into v; a missing result leaves v empty.
func decodeResult(env *envelope, label string, v any) error {
	if env == nil || len(env.Result) == 0 || string(env.Result) == "null" {
		return nil
	}
	if err := json.Unmarshal(env.Result, v); err != nil {
		return fmt.Errorf("decoding %s result: %w", label, err)
	}
	return nil
}
