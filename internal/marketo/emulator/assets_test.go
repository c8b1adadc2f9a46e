package emulator

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestStaticListAssets(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{})
	folder := v.em.CreateFolder("Audiences")
	folderJSON := `{"id":` + itoa(folder) + `,"type":"Folder"}`

	// Create: documented form body with a JSON folder.
	r := ok(t, v.do(request{method: "POST", path: "/rest/asset/v1/staticLists.json",
		form: url.Values{"folder": {folderJSON}, "name": {"My Static List"}, "description": {"d"}}}))
	golden(t, "asset_create.json", r.Raw)
	id := int64(r.results(t)[0]["id"].(float64))

	// Create: Segment's variant, bare folder id in the query string, no body.
	r = ok(t, v.do(request{method: "POST", path: "/rest/asset/v1/staticLists.json",
		query: url.Values{"folder": {itoa(folder)}, "name": {"Second, with comma"}}}))
	second := int64(r.results(t)[0]["id"].(float64))

	// Duplicate name: 709.
	r = v.do(request{method: "POST", path: "/rest/asset/v1/staticLists.json",
		form: url.Values{"folder": {itoa(folder)}, "name": {"My Static List"}}})
	failed(t, r, "709")
	golden(t, "asset_create_duplicate.json", r.Raw)
	require.Equal(t, "Static List with the same name already exists", r.Errors[0].Message)

	for _, tt := range []struct {
		name string
		form url.Values
		code string
	}{
		{"no name", url.Values{"folder": {itoa(folder)}}, "701"},
		{"no folder", url.Values{"name": {"x"}}, "701"},
		{"unknown folder", url.Values{"name": {"x"}, "folder": {"9999"}}, "710"},
		{"program type for a folder", url.Values{"name": {"x"}, "folder": {`{"id":` + itoa(folder) + `,"type":"Program"}`}}, "710"},
		{"bad folder", url.Values{"name": {"x"}, "folder": {"{oops"}}, "1003"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			failed(t, v.do(request{method: "POST", path: "/rest/asset/v1/staticLists.json", form: tt.form}), tt.code)
		})
	}

	// Get by id and by name.
	r = ok(t, v.get("/rest/asset/v1/staticList/"+itoa(id)+".json", nil))
	golden(t, "asset_get.json", r.Raw)
	r = ok(t, v.get("/rest/asset/v1/staticList/byName.json", url.Values{"name": {"Second, with comma"}}))
	require.EqualValues(t, second, r.results(t)[0]["id"])

	// Not found: success, the warning, no result.
	r = ok(t, v.get("/rest/asset/v1/staticList/99999.json", nil))
	golden(t, "asset_not_found.json", r.Raw)
	require.Nil(t, r.Result)
	r = ok(t, v.get("/rest/asset/v1/staticList/byName.json", url.Values{"name": {"my static list"}}))
	require.JSONEq(t, `["No assets found for the given search criteria."]`, string(r.Warnings))

	// Browse with folder filters in both forms, and paging.
	r = ok(t, v.get("/rest/asset/v1/staticLists.json", url.Values{"folder": {folderJSON}}))
	require.Len(t, r.results(t), 2)
	r = ok(t, v.get("/rest/asset/v1/staticLists.json", url.Values{"folder": {itoa(folder)}, "offset": {"1"}, "maxReturn": {"1"}}))
	require.EqualValues(t, second, r.results(t)[0]["id"])
	r = ok(t, v.get("/rest/asset/v1/staticLists.json", url.Values{"earliestUpdatedAt": {"2030-01-01T00:00:00Z"}}))
	require.Nil(t, r.Result)
	failed(t, v.get("/rest/asset/v1/staticLists.json", url.Values{"maxReturn": {"201"}}), "1003")

	// Update and delete.
	r = ok(t, v.do(request{method: "POST", path: "/rest/asset/v1/staticList/" + itoa(second) + ".json", form: url.Values{"name": {"Renamed"}}}))
	require.Equal(t, "Renamed", r.results(t)[0]["name"])
	failed(t, v.do(request{method: "POST", path: "/rest/asset/v1/staticList/" + itoa(second) + ".json", form: url.Values{"name": {"My Static List"}}}), "709")
	r = ok(t, v.do(request{method: "POST", path: "/rest/asset/v1/staticList/" + itoa(second) + "/delete.json"}))
	golden(t, "asset_delete.json", r.Raw)
	r = ok(t, v.get("/rest/asset/v1/staticList/"+itoa(second)+".json", nil))
	require.Nil(t, r.Result)
	require.False(t, v.em.DeleteStaticList(second))
	require.True(t, v.em.DeleteStaticList(id))
	require.Empty(t, v.em.StaticLists())
}

func TestFolderAssets(t *testing.T) {
	t.Parallel()
	v := newEnv(t, Config{})
	a1 := v.em.CreateFolder("Audiences")
	a2 := v.em.CreateFolder("Audiences")
	p := v.em.CreateProgram("Audiences")

	r := ok(t, v.get("/rest/asset/v1/folder/byName.json", url.Values{"name": {"Audiences"}, "type": {"Folder"}}))
	golden(t, "folder_by_name.json", r.Raw)
	require.Len(t, r.results(t), 2)
	r = ok(t, v.get("/rest/asset/v1/folder/byName.json", url.Values{"name": {"Audiences"}}))
	require.Len(t, r.results(t), 3)
	r = ok(t, v.get("/rest/asset/v1/folder/byName.json", url.Values{"name": {"Audiences"}, "type": {"program"}}))
	require.EqualValues(t, p, r.results(t)[0]["id"])
	r = ok(t, v.get("/rest/asset/v1/folder/byName.json", url.Values{"name": {"Nope"}}))
	require.Nil(t, r.Result)
	failed(t, v.get("/rest/asset/v1/folder/byName.json", nil), "701")

	r = ok(t, v.get("/rest/asset/v1/folder/"+itoa(a2)+".json", url.Values{"type": {"Folder"}}))
	require.EqualValues(t, a2, r.results(t)[0]["id"])
	r = ok(t, v.get("/rest/asset/v1/folder/"+itoa(a2)+".json", url.Values{"type": {"Program"}}))
	require.Nil(t, r.Result)

	// Create a subfolder over REST; names are unique within a parent.
	r = ok(t, v.do(request{method: "POST", path: "/rest/asset/v1/folders.json",
		form: url.Values{"name": {"Sub"}, "parent": {`{"id":` + itoa(a1) + `,"type":"Folder"}`}}}))
	sub := r.results(t)[0]
	require.Equal(t, "/Lead Database/Group Lists/Audiences/Sub", sub["path"])
	failed(t, v.do(request{method: "POST", path: "/rest/asset/v1/folders.json",
		form: url.Values{"name": {"Sub"}, "parent": {itoa(a1)}}}), "709")
	failed(t, v.do(request{method: "POST", path: "/rest/asset/v1/folders.json",
		form: url.Values{"name": {"Sub"}, "parent": {"424242"}}}), "710")

	r = ok(t, v.get("/rest/asset/v1/folders.json", url.Values{"root": {itoa(a1)}}))
	require.Len(t, r.results(t), 2)
	r = ok(t, v.get("/rest/asset/v1/folders.json", url.Values{"maxReturn": {"2"}, "offset": {"3"}}))
	require.Len(t, r.results(t), 1)
	require.Len(t, v.em.Folders(), 4)
}

func TestParseFolderParam(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in      string
		want    folderRef
		wantErr bool
	}{
		{in: "13", want: folderRef{13, "Folder"}},
		{in: ` {"id":13,"type":"FOLDER"} `, want: folderRef{13, "Folder"}},
		{in: `{"id":"14","type":"program"}`, want: folderRef{14, "Program"}},
		{in: `{"id":15}`, want: folderRef{15, "Folder"}},
		{in: "", wantErr: true},
		{in: "0", wantErr: true},
		{in: "abc", wantErr: true},
		{in: `{"id":1,"type":"Zone"}`, wantErr: true},
		{in: `{"type":"Folder"}`, wantErr: true},
	} {
		got, err := parseFolderParam(tt.in)
		if tt.wantErr {
			require.Error(t, err, tt.in)
			continue
		}
		require.NoError(t, err, tt.in)
		require.Equal(t, tt.want, got, tt.in)
	}
}
