#include "an_db.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "an_store.h"

const char *an_db_unreadable(sqlite3 *db)
{
  int code = sqlite3_errcode(db) & 0xff;
  if (code == SQLITE_CANTOPEN || code == SQLITE_READONLY || code == SQLITE_PERM)
    return "cannot be read by this user here: SQLite keeps a WAL-mode database's -shm and -wal "
           "files beside it, and this directory is not writable (copy the database to a "
           "writable directory, or ask for write permission)";
  return code == SQLITE_NOTADB ? "not an SQLite database" : "not an SQLite database, or a damaged one";
}

wl_status an_db_open_readonly(const char *path, sqlite3 **db, int *schema, char *err,
                              size_t err_size)
{
  if (sqlite3_open_v2(path, db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
    snprintf(err, err_size, "%s: %s", path, sqlite3_errmsg(*db));
    sqlite3_close(*db);
    *db = NULL;
    return WL_EDB;
  }
  sqlite3_busy_timeout(*db, 60000);
  sqlite3_stmt *st;
  int version = -1;
  if (sqlite3_prepare_v2(*db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
    if (sqlite3_step(st) == SQLITE_ROW)
      version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
  }
  if (version < 0) {
    snprintf(err, err_size, "%s: %s", path, an_db_unreadable(*db));
    sqlite3_close(*db);
    *db = NULL;
    return WL_EDB;
  }
  if (version < 1 || version > AN_SCHEMA_VERSION) {
    snprintf(err, err_size, "%s: %s (schema version %d; this syncsim reads versions 1 to %d)",
             path, version == 0 ? "not a syncsim results database" : "another schema version",
             version, AN_SCHEMA_VERSION);
    sqlite3_close(*db);
    *db = NULL;
    return WL_EDB;
  }
  /* a damaged file would read as fewer or wrong rows: refuse it whole */
  sqlite3_stmt *qc;
  const char *verdict = NULL;
  char first[200] = "";
  if (sqlite3_prepare_v2(*db, "PRAGMA quick_check(1)", -1, &qc, NULL) == SQLITE_OK) {
    if (sqlite3_step(qc) == SQLITE_ROW && (verdict = (const char *)sqlite3_column_text(qc, 0)))
      snprintf(first, sizeof first, "%s", verdict);
    for (char *c = first; *c; c++) /* one line */
      *c = *c == '\n' ? ' ' : *c;
    sqlite3_finalize(qc);
  }
  if (strcmp(first, "ok") != 0) {
    snprintf(err, err_size, "%s: the database is damaged (PRAGMA quick_check: %s)", path,
             first[0] ? first : sqlite3_errmsg(*db));
    sqlite3_close(*db);
    *db = NULL;
    return WL_EDB;
  }
  *schema = version;
  return WL_OK;
}

/* The columns a version-1 or -2 runs table lacks, as the upgrades would fill them. */
static const char v1_extra_columns[] =
  ", 1 AS numerics_version, NULL AS source_commit, NULL AS kernels, NULL AS cpu,"
  " NULL AS host, NULL AS command, NULL AS inputs_json, NULL AS pid";
static const char v2_extra_columns[] = ", NULL AS pid";

/* `runs` as the readers see it: a TEMP view over main.runs with the columns of the current
 * schema (for an older file, which is not written to; a version-1 one's `workers` gets one
 * too), restricted to one scenario. */
static wl_status runs_view(sqlite3 *db, int schema, const char *scenario, char *err,
                           size_t err_size)
{
  if (schema == 1 && sqlite3_exec(db, "CREATE TEMP VIEW workers AS SELECT *, 0 AS blocked_s"
                                      " FROM main.workers", NULL, NULL, NULL) != SQLITE_OK) {
    snprintf(err, err_size, "%s", sqlite3_errmsg(db));
    return WL_EDB;
  }
  if (schema == AN_SCHEMA_VERSION && !scenario)
    return WL_OK;
  char *where = scenario ? sqlite3_mprintf(" WHERE scenario = %Q", scenario) : NULL;
  char *sql = (!scenario || where)
                ? sqlite3_mprintf("CREATE TEMP VIEW runs AS SELECT *%s FROM main.runs%s",
                                  schema == 1   ? v1_extra_columns
                                  : schema == 2 ? v2_extra_columns
                                                : "",
                                  where ? where : "")
                : NULL;
  sqlite3_free(where);
  char *msg = NULL;
  int ok = sql && sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK;
  sqlite3_free(sql);
  if (!ok) {
    snprintf(err, err_size, "%s%s", scenario ? "--scenario: " : "",
             msg ? msg : "out of memory");
    sqlite3_free(msg);
    return WL_EDB;
  }
  return WL_OK;
}

static wl_status check_scenario_has_runs(sqlite3 *db, const char *scenario, char *err, size_t err_size)
{
  sqlite3_stmt *st;
  int n = 0;
  char names[400] = "";
  if (sqlite3_prepare_v2(db, "SELECT (SELECT count(*) FROM runs),"
                             " (SELECT group_concat(name, ', ') FROM"
                             "  (SELECT DISTINCT scenario AS name FROM main.runs ORDER BY 1))",
                         -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
    n = sqlite3_column_int(st, 0);
    snprintf(names, sizeof names, "%s",
             sqlite3_column_text(st, 1) ? (const char *)sqlite3_column_text(st, 1) : "none");
  }
  sqlite3_finalize(st);
  if (n == 0) {
    snprintf(err, err_size, "--scenario: no runs of scenario '%s' (the database has: %s)",
             scenario, names);
    return WL_ECONFIG;
  }
  return WL_OK;
}

wl_status an_db_open_runs(const char *path, const char *scenario, sqlite3 **db, char *err,
                          size_t err_size)
{
  int schema;
  wl_status rc = an_db_open_readonly(path, db, &schema, err, err_size);
  if (rc == WL_OK && ((rc = runs_view(*db, schema, scenario, err, err_size)) != WL_OK ||
                      (scenario && (rc = check_scenario_has_runs(*db, scenario, err, err_size)) != WL_OK))) {
    sqlite3_close(*db);
    *db = NULL;
  }
  return rc;
}

/* t(0.975; df) for df = 1..300, Student's t quantile that 95% two-sided intervals use. The
 * values are constants (from GSL's gsl_cdf_tdist_Pinv, accurate to about 1e-15), so the
 * report prints the same digits on every machine; beyond df 300, the Cornish-Fisher
 * expansion around the normal quantile (relative error below 2e-13 there). */
static const double t975[300] = {  12.706204736174696, 4.3026527297494619, 3.1824463052837038, 2.7764451051977925,
  2.5705818356363141, 2.4469118511449683, 2.3646242515927844, 2.3060041352041658,
  2.2621571627982053, 2.2281388519862735, 2.2009851600916397, 2.1788128296672293,
  2.1603686564627922, 2.1447866879178026, 2.1314495455597751, 2.1199052992212528,
  2.109815577833317, 2.1009220402410387, 2.0930240544083096, 2.0859634472658648,
  2.0796138447276791, 2.0738730679040245, 2.0686576104190482, 2.063898561628025,
  2.0595385527532959, 2.05552943864287, 2.0518305164802855, 2.0484071417952463,
  2.0452296421327016, 2.0422724563012378, 2.0395134463964069, 2.0369333434601011,
  2.0345152974493379, 2.0322445093177182, 2.0301079282503429, 2.0280940009804498,
  2.0261924630291102, 2.0243941639119685, 2.0226909200367595, 2.0210753903062737,
  2.0195409704413754, 2.0180817028184443, 2.0166921992278239, 2.0153675744437631,
  2.0141033888808471, 2.0128955989194286, 2.0117405137297659, 2.0106347576242323,
  2.0095752371292401, 2.0085591121007602, 2.0075837703158359, 2.0066468050616888,
  2.0057459953178691, 2.0048792881880564, 2.0040447832891455, 2.0032407188478718,
  2.0024654592910069, 2.0017174841452361, 2.0009953780882679, 2.0002978220142595,
  1.99962358499494, 1.9989715170333777, 1.9983405425207417, 1.9977296543176926,
  1.9971379083920033, 1.9965644189523124, 1.9960083540252966, 1.9954689314298442,
  1.9949454151072379, 1.9944371117711859, 1.9939433678456251, 1.9934635666618719,
  1.9929971258898558, 1.9925434951809315, 1.9921021540022428, 1.9916726096446635,
  1.9912543953883857, 1.9908470688116915, 1.9904502102301291, 1.990063421254445,
  1.9896863234569022, 1.9893185571365717, 1.9889597801751633, 1.9886096669757092,
  1.9882679074772212, 1.9879342062390206, 1.9876082815890705, 1.9872898648311688,
  1.9869786995062808, 1.9866745407037685, 1.986377154418618, 1.9860863169511289,
  1.9858018143458231, 1.9855234418666032, 1.9852510035054969, 1.9849843115224577,
  1.9847231860139842, 1.9844674545084808, 1.9842169515864176, 1.9839715185235514,
  1.983731002955605, 1.9834952585628793, 1.9832641447734565, 1.9830375264837257,
  1.9828152737950486, 1.9825972617654999, 1.982383370175691, 1.9821734833077278,
  1.9819674897364816, 1.9817652821323712, 1.9815667570749012, 1.9813718148763051,
  1.9811803594146602, 1.9809922979758576, 1.9808075411039088, 1.9806260024590903,
  1.9804475986834011, 1.9802722492729747, 1.9800998764569402, 1.9799304050824402,
  1.9797637625053859, 1.9795998784866382, 1.9794386850933046, 1.9792801166048555,
  1.9791241094237979, 1.9789706019906277, 1.9788195347028548, 1.9786708498378358,
  1.9785244914792579, 1.9783804054470213, 1.9782385392303801, 1.9780988419241299,
  1.9779612641677251, 1.9778257580871241, 1.9776922772392522, 1.9775607765589351,
  1.9774312123081736, 1.977303542027651, 1.9771777244903328, 1.9770537196570981,
  1.9769314886342519, 1.9768109936328608, 1.9766921979297976, 1.9765750658304431,
  1.9764595626329182, 1.9763456545938138, 1.9762333088953272, 1.9761224936137451,
  1.9760131776891923, 1.9759053308966195, 1.9757989238179401, 1.9756939278152708,
  1.9755903150052492, 1.9754880582343404, 1.975387131055115, 1.9752875077034484,
  1.975189163076591, 1.9750920727120846, 1.9749962127674761, 1.9749015600007991,
  1.9748080917517881, 1.974715785923792, 1.9746246209663607, 1.9745345758584754,
  1.9744456300923814, 1.974357763658029, 1.9742709570280561, 1.9741851911433244,
  1.9741004473989765, 1.9740167076309705, 1.973933954103106, 1.9738521694945066,
  1.9737713368875216, 1.9736914397560743, 1.9736124619543842, 1.9735343877061049,
  1.9734572015938034, 1.9733808885488235, 1.9733054338414739, 1.973230823071545,
  1.9731570421591604, 1.9730840773359033, 1.9730119151362666, 1.9729405423893609,
  1.972869946210897, 1.9728001139954419, 1.9727310334089092, 1.9726626923813007,
  1.9725950790996682, 1.9725281820013176, 1.9724619897672118, 1.9723964913155814,
  1.9723316757957496, 1.9722675325821351, 1.9722040512684427, 1.9721412216620406,
  1.972079033778503, 1.9720174778363146, 1.9719565442517533, 1.9718962236339082,
  1.9718365067798598, 1.9717773846699902, 1.9717188484634531, 1.9716608894937617,
  1.9716034992645111, 1.9715466694452264, 1.9714903918673325, 1.9714346585202416,
  1.9713794615475446, 1.9713247932433313, 1.9712706460485947, 1.9712170125477515,
  1.971163885465254, 1.9711112576623027, 1.9710591221336451, 1.9710074720044728,
  1.9709563005273896, 1.9709056010794856, 1.9708553671594715, 1.9708055923849024,
  1.9707562704894741, 1.970707395320392, 1.9706589608358152, 1.9706109611023632,
  1.9705633902926978, 1.9705162426831593, 1.9704695126514753, 1.9704231946745228,
  1.9703772833261552, 1.9703317732750771, 1.9702866592827883, 1.9702419362015702,
  1.9701975989725269, 1.9701536426236788, 1.9701100622681036, 1.9700668531021259,
  1.9700240104035507, 1.9699815295299445, 1.9699394059169586, 1.9698976350766912,
  1.9698562125960988, 1.9698151341354366, 1.9697743954267468, 1.969733992272378,
  1.9696939205435453, 1.9696541761789235, 1.9696147551832701, 1.9695756536260944,
  1.9695368676403515, 1.9694983934211538, 1.9694602272245436, 1.9694223653662704,
  1.9693848042206041, 1.9693475402191816, 1.969310569849875, 1.9692738896556878,
  1.9692374962336781, 1.9692013862339046, 1.9691655563584021, 1.9691300033601735,
  1.9690947240422119, 1.9690597152565401, 1.9690249739032761, 1.9689904969297172,
  1.968956281329445, 1.968922324141454, 1.9688886224492941, 1.9688551733802386,
  1.9688219741044664, 1.9687890218342639, 1.9687563138232453, 1.9687238473655899,
  1.9686916197952944, 1.9686596284854438, 1.9686278708475, 1.9685963443305992,
  1.9685650464208726, 1.9685339746407764, 1.9685031265484381, 1.9684724997370182,
  1.9684420918340826, 1.9684119005009904, 1.9683819234322963, 1.9683521583551553,
  1.9683226030287659, 1.9682932552437891, 1.9682641128218075, 1.9682351736147841,
  1.9682064355045372, 1.9681778964022139, 1.9681495542478038, 1.9681214070096176,
  1.9680934526838227, 1.9680656892939583, 1.9680381148904702, 1.9680107275502561,
  1.967983525376215, 1.9679565064968203, 1.9679296690656705, 1.9679030112610871,
};

double an_t975(int df)
{
  if (df < 1)
    return NAN;
  if (df <= 300)
    return t975[df - 1];
  const double z = 1.959963984540054, z2 = z * z, n = df; /* the normal's 0.975 quantile */
  return z + (z2 * z + z) / (4 * n) + (5 * z2 * z2 * z + 16 * z2 * z + 3 * z) / (96 * n * n) +
         (3 * z2 * z2 * z2 * z + 19 * z2 * z2 * z + 17 * z2 * z - 15 * z) / (384 * n * n * n) +
         (79 * z2 * z2 * z2 * z2 * z + 776 * z2 * z2 * z2 * z + 1482 * z2 * z2 * z -
          1920 * z2 * z - 945 * z) / (92160 * n * n * n * n);
}

double an_mean(const double *x, int n)
{
  double sum = 0;
  for (int i = 0; i < n; i++)
    sum += x[i];
  return n ? sum / n : NAN;
}

double an_ci95(const double *x, int n)
{
  if (n < 2)
    return NAN;
  double m = an_mean(x, n), ss = 0;
  for (int i = 0; i < n; i++)
    ss += (x[i] - m) * (x[i] - m);
  return an_t975(n - 1) * sqrt(ss / (n - 1)) / sqrt((double)n);
}

double an_db_real(sqlite3_stmt *st, int col)
{
  return sqlite3_column_type(st, col) == SQLITE_NULL ? NAN : sqlite3_column_double(st, col);
}

const char *an_loss_set(sqlite3 *db, const char *scenario)
{
  sqlite3_stmt *st;
  int train = 0, test = 0;
  if (sqlite3_prepare_v2(db, "SELECT coalesce(json_extract(config_json, '$.eval.on'), 'test')"
                             " = 'train', count(*) FROM runs WHERE status = 'done'"
                             " AND (?1 IS NULL OR scenario = ?1) GROUP BY 1",
                         -1, &st, NULL) != SQLITE_OK)
    return "held-out";
  sqlite3_bind_text(st, 1, scenario, -1, SQLITE_STATIC);
  while (sqlite3_step(st) == SQLITE_ROW)
    *(sqlite3_column_int(st, 0) ? &train : &test) += sqlite3_column_int(st, 1) > 0;
  sqlite3_finalize(st);
  return train && test ? "evaluation" : train ? "training-set" : "held-out";
}

const char *an_axis_name(const char *axis)
{
  const char *comma = strrchr(axis, ',');
  const char *path = comma ? comma + 1 : axis;
  const char *dot = strrchr(path, '.');
  return dot ? dot + 1 : path;
}
