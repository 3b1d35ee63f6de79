PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE runs (
	id INTEGER NOT NULL, 
	sha VARCHAR(64) NOT NULL, 
	message TEXT NOT NULL, 
	author VARCHAR(200) NOT NULL, 
	seed INTEGER NOT NULL, 
	dataset_window VARCHAR(40) NOT NULL, 
	failure_modes JSON NOT NULL, 
	status VARCHAR(32) NOT NULL, 
	created_at FLOAT NOT NULL, 
	updated_at FLOAT NOT NULL, 
	finished_at FLOAT, 
	PRIMARY KEY (id)
);
INSERT INTO runs VALUES(1,'7e623fcbed8a86703ff22ae6aa7f98163d41a0c4','made by 76bfc14, failed at data validation','',41,'2025-01-01..2025-06-30','["schema_validation"]','failed',1796599119.7608716488,1796599119.933810234,1796599119.933810234);
INSERT INTO runs VALUES(2,'b1d2d5af2d38f93b5a81b87c15066aa4f5dcc739','made by 76bfc14, CI passed','',42,'2025-01-01..2025-06-30','[]','ci_complete',1796599126.6113862991,1796599147.5381941794,1796599147.5381941794);
CREATE TABLE logs (
	id INTEGER NOT NULL, 
	run_id INTEGER NOT NULL, 
	step VARCHAR(64) NOT NULL, 
	attempt INTEGER NOT NULL, 
	ts FLOAT NOT NULL, 
	level VARCHAR(10) NOT NULL, 
	message TEXT NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO logs VALUES(1,1,'commit_received',1,1796599119.7856135368,'INFO','started commit_received (attempt 1) on vm:12259:689227');
INSERT INTO logs VALUES(2,1,'commit_received',1,1796599119.7877044677,'INFO','commit 7e623fcbed8a86703ff22ae6aa7f98163d41a0c4 by unknown: ''made by 76bfc14, failed at data validation''');
INSERT INTO logs VALUES(3,1,'commit_received',1,1796599119.7923617362,'INFO','seed 41; dataset window 2025-01-01 .. 2025-06-30 (181 days)');
INSERT INTO logs VALUES(4,1,'commit_received',1,1796599119.7929449081,'WARNING','failure modes on for this run: schema_validation');
INSERT INTO logs VALUES(5,1,'commit_received',1,1796599119.7986426353,'INFO','commit_received finished in 0.03 s');
INSERT INTO logs VALUES(6,1,'data_validation',1,1796599119.8076269626,'INFO','started data_validation (attempt 1) on vm:12259:689227');
INSERT INTO logs VALUES(7,1,'ci_tests',1,1796599119.8091926574,'INFO','started ci_tests (attempt 1) on vm:12259:689227');
INSERT INTO logs VALUES(8,1,'ci_tests',1,1796599119.8696241378,'INFO','$ pytest /tmp/old-76bfc14/engine/steps/ci_tests_suite -c /tmp/old-76bfc14/engine/steps/ci_tests_suite/pytest.ini --rootdir /tmp/old-76bfc14 --junitxml=/tmp/store-76bfc14/runs/1/junit-1.xml');
INSERT INTO logs VALUES(9,1,'data_validation',1,1796599119.8997406959,'INFO','validating 40,000 claims, 8 columns');
INSERT INTO logs VALUES(10,1,'data_validation',1,1796599119.9169459342,'ERROR','FAIL required_columns: Fix the column layout (missing column: diagnosis_group): each of claim_id, service_date, cpt_bucket, provider_type, diagnosis_group, billed_amount, allowed_amount, patient_age, outcome must appear exactly once; extra columns are ignored.');
INSERT INTO logs VALUES(11,1,'data_validation',1,1796599119.9176988601,'ERROR','FAIL dtypes: Not fully evaluated because diagnosis_group is missing; fix required_columns and dtypes first.');
INSERT INTO logs VALUES(12,1,'data_validation',1,1796599119.9181809425,'ERROR','FAIL allowed_categories: Not fully evaluated because diagnosis_group is missing; fix required_columns and dtypes first.');
INSERT INTO logs VALUES(13,1,'data_validation',1,1796599119.9186131954,'INFO','PASS billed_amount_positive');
INSERT INTO logs VALUES(14,1,'data_validation',1,1796599119.9190297127,'INFO','PASS allowed_amount_positive');
INSERT INTO logs VALUES(15,1,'data_validation',1,1796599119.9194278716,'INFO','PASS allowed_within_billed');
INSERT INTO logs VALUES(16,1,'data_validation',1,1796599119.9198212623,'INFO','PASS patient_age_range');
INSERT INTO logs VALUES(17,1,'data_validation',1,1796599119.9243106842,'ERROR','FAIL no_nulls: Not fully evaluated because diagnosis_group is missing; fix required_columns and dtypes first.');
INSERT INTO logs VALUES(18,1,'data_validation',1,1796599119.924899578,'INFO','PASS unique_claim_id');
INSERT INTO logs VALUES(19,1,'data_validation',1,1796599119.9256813525,'ERROR','data contract violated in 4 checks (required_columns, dtypes, allowed_categories, no_nulls); first: Fix the column layout (missing column: diagnosis_group): each of claim_id, service_date, cpt_bucket, provider_type, diagnosis_group, billed_amount, allowed_amount, patient_age, outcome must appear exactly once; extra columns are ignored.');
INSERT INTO logs VALUES(20,1,'ci_tests',1,1796599120.0238368511,'INFO','ruff: 0 issue(s) in engine/ml');
INSERT INTO logs VALUES(21,1,'ci_tests',1,1796599123.9289879798,'INFO','......                                                                   [100%]');
INSERT INTO logs VALUES(22,1,'ci_tests',1,1796599123.9295761585,'INFO','6 passed in 2.52s');
INSERT INTO logs VALUES(23,1,'ci_tests',1,1796599123.9313111305,'INFO','ci_tests finished in 4.13 s');
INSERT INTO logs VALUES(24,2,'commit_received',1,1796599126.6497898102,'INFO','started commit_received (attempt 1) on vm:12433:80130d');
INSERT INTO logs VALUES(25,2,'commit_received',1,1796599126.6644506454,'INFO','commit b1d2d5af2d38f93b5a81b87c15066aa4f5dcc739 by unknown: ''made by 76bfc14, CI passed''');
INSERT INTO logs VALUES(26,2,'commit_received',1,1796599126.6652674674,'INFO','seed 42; dataset window 2025-01-01 .. 2025-06-30 (181 days)');
INSERT INTO logs VALUES(27,2,'commit_received',1,1796599126.682993412,'INFO','commit_received finished in 0.04 s');
INSERT INTO logs VALUES(28,2,'ci_tests',1,1796599126.6976754664,'INFO','started ci_tests (attempt 1) on vm:12433:80130d');
INSERT INTO logs VALUES(29,2,'data_validation',1,1796599126.7169365882,'INFO','started data_validation (attempt 1) on vm:12433:80130d');
INSERT INTO logs VALUES(30,2,'ci_tests',1,1796599126.7877967357,'INFO','$ pytest /tmp/old-76bfc14/engine/steps/ci_tests_suite -c /tmp/old-76bfc14/engine/steps/ci_tests_suite/pytest.ini --rootdir /tmp/old-76bfc14 --junitxml=/tmp/store-76bfc14/runs/2/junit-1.xml');
INSERT INTO logs VALUES(31,2,'data_validation',1,1796599126.9266817569,'INFO','validating 40,000 claims, 9 columns');
INSERT INTO logs VALUES(32,2,'data_validation',1,1796599126.970953226,'INFO','PASS required_columns');
INSERT INTO logs VALUES(33,2,'data_validation',1,1796599126.9716105461,'INFO','PASS dtypes');
INSERT INTO logs VALUES(34,2,'data_validation',1,1796599126.9720818996,'INFO','PASS allowed_categories');
INSERT INTO logs VALUES(35,2,'data_validation',1,1796599126.9909324646,'INFO','PASS billed_amount_positive');
INSERT INTO logs VALUES(36,2,'data_validation',1,1796599126.9914762973,'INFO','PASS allowed_amount_positive');
INSERT INTO logs VALUES(37,2,'data_validation',1,1796599126.9919116496,'INFO','PASS allowed_within_billed');
INSERT INTO logs VALUES(38,2,'data_validation',1,1796599127.0085980892,'INFO','PASS patient_age_range');
INSERT INTO logs VALUES(39,2,'data_validation',1,1796599127.0093314648,'INFO','PASS no_nulls');
INSERT INTO logs VALUES(40,2,'data_validation',1,1796599127.0098438263,'INFO','PASS unique_claim_id');
INSERT INTO logs VALUES(41,2,'data_validation',1,1796599127.0297224521,'INFO','data_validation finished in 0.32 s');
INSERT INTO logs VALUES(42,2,'ci_quick_train',1,1796599127.0595624446,'INFO','started ci_quick_train (attempt 1) on vm:12433:80130d');
INSERT INTO logs VALUES(43,2,'ci_tests',1,1796599127.0770118236,'INFO','ruff: 0 issue(s) in engine/ml');
INSERT INTO logs VALUES(44,2,'ci_quick_train',1,1796599130.5659530163,'INFO','training {''n_estimators'': 20, ''max_leaf_nodes'': 128, ''max_features'': 4, ''min_samples_leaf'': 10, ''max_samples'': 0.5, ''n_jobs'': 2} on 6,000 claims; holdout 2,000');
INSERT INTO logs VALUES(45,2,'ci_quick_train',1,1796599130.9283337592,'INFO','fit in 0.27 s; ROC-AUC 0.8910, F1 0.8836');
INSERT INTO logs VALUES(46,2,'ci_quick_train',1,1796599130.9543478489,'INFO','ci_quick_train finished in 3.88 s');
INSERT INTO logs VALUES(47,2,'mlflow_log_ci',1,1796599131.1931202411,'INFO','started mlflow_log_ci (attempt 1) on vm:12433:80130d');
INSERT INTO logs VALUES(48,2,'ci_tests',1,1796599139.0472035408,'INFO','......                                                                   [100%]');
INSERT INTO logs VALUES(49,2,'ci_tests',1,1796599139.0479829311,'INFO','6 passed in 7.10s');
INSERT INTO logs VALUES(50,2,'ci_tests',1,1796599139.0575110912,'INFO','ci_tests finished in 12.36 s');
INSERT INTO logs VALUES(51,2,'mlflow_log_ci',1,1796599144.9847052097,'INFO','logging to MLflow at sqlite:////tmp/store-76bfc14/mlflow.db');
INSERT INTO logs VALUES(52,2,'mlflow_log_ci',1,1796599147.5115396977,'INFO','MLflow run 7a00bc0ef1a148a998478a9bc9971fef: 7 metrics, dataset digest 773c781d');
INSERT INTO logs VALUES(53,2,'mlflow_log_ci',1,1796599147.5449717045,'INFO','mlflow_log_ci finished in 16.50 s');
CREATE TABLE audit (
	id INTEGER NOT NULL, 
	ts FLOAT NOT NULL, 
	actor VARCHAR(200) NOT NULL, 
	action VARCHAR(40) NOT NULL, 
	run_id INTEGER, 
	comment TEXT NOT NULL, 
	detail JSON, 
	PRIMARY KEY (id)
);
INSERT INTO audit VALUES(1,1796599117.9015026092,'cli','failure_mode',NULL,'schema_validation on','{"mode": "schema_validation", "enabled": true}');
INSERT INTO audit VALUES(2,1796599119.7660069466,'cli','commit',1,'made by 76bfc14, failed at data validation','{"sha": "7e623fcbed8a86703ff22ae6aa7f98163d41a0c4", "seed": 41, "window": "2025-01-01..2025-06-30", "failure_modes": ["schema_validation"]}');
INSERT INTO audit VALUES(3,1796599125.0080754756,'cli','failure_mode',NULL,'schema_validation off','{"mode": "schema_validation", "enabled": false}');
INSERT INTO audit VALUES(4,1796599126.6246540546,'cli','commit',2,'made by 76bfc14, CI passed','{"sha": "b1d2d5af2d38f93b5a81b87c15066aa4f5dcc739", "seed": 42, "window": "2025-01-01..2025-06-30", "failure_modes": []}');
CREATE TABLE failure_modes (
	name VARCHAR(40) NOT NULL, 
	enabled BOOLEAN NOT NULL, 
	updated_at FLOAT NOT NULL, 
	PRIMARY KEY (name)
);
INSERT INTO failure_modes VALUES('schema_validation',0,1796599125.0067698955);
CREATE TABLE alias_history (
	id INTEGER NOT NULL, 
	alias VARCHAR(40) NOT NULL, 
	version INTEGER NOT NULL, 
	run_id INTEGER, 
	since FLOAT NOT NULL, 
	until FLOAT, 
	action VARCHAR(20) NOT NULL, 
	moved_by VARCHAR(200) NOT NULL, 
	reason TEXT NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE steps (
	id INTEGER NOT NULL, 
	run_id INTEGER NOT NULL, 
	name VARCHAR(64) NOT NULL, 
	position INTEGER NOT NULL, 
	stage VARCHAR(16) NOT NULL, 
	status VARCHAR(32) NOT NULL, 
	attempt INTEGER NOT NULL, 
	queued_at FLOAT, 
	started_at FLOAT, 
	finished_at FLOAT, 
	heartbeat_at FLOAT, 
	worker VARCHAR(120), 
	outputs JSON, 
	error TEXT, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_steps_run_name UNIQUE (run_id, name), 
	FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE
);
INSERT INTO steps VALUES(1,1,'commit_received',0,'CI','succeeded',1,1796599119.7608716488,1796599119.7674734593,1796599119.7933480739,1796599119.7674734593,'vm:12259:689227','{"sha": "7e623fcbed8a86703ff22ae6aa7f98163d41a0c4", "message": "made by 76bfc14, failed at data validation", "author": "", "seed": 41, "dataset_window": "2025-01-01..2025-06-30", "window_days": 181, "failure_modes": ["schema_validation"]}',NULL);
INSERT INTO steps VALUES(2,1,'ci_tests',1,'CI','succeeded',1,1796599119.7970046996,1796599119.7991425991,1796599123.9301753044,1796599123.8255755901,'vm:12259:689227','{"tests": [{"name": "test_contract::test_generated_claims_pass_the_contract", "outcome": "passed", "duration": 0.025, "message": ""}, {"name": "test_contract::test_missing_column_is_named", "outcome": "passed", "duration": 0.007, "message": ""}, {"name": "test_contract::test_allowed_above_billed_is_caught", "outcome": "passed", "duration": 0.006, "message": ""}, {"name": "test_generator::test_same_seed_same_frame", "outcome": "passed", "duration": 0.025, "message": ""}, {"name": "test_generator::test_invariants", "outcome": "passed", "duration": 0.042, "message": ""}, {"name": "test_training::test_model_fits_the_run_sample", "outcome": "passed", "duration": 0.12, "message": ""}], "passed": 6, "failed": 0, "skipped": 0, "duration_seconds": 0.225, "exit_code": 0, "sample_rows": 2000, "lint": {"tool": "ruff", "issues": [], "exit_code": 0}}',NULL);
INSERT INTO steps VALUES(3,1,'data_validation',2,'CI','failed',1,1796599119.7980895042,1796599119.8047146797,1796599119.9266526699,1796599119.8047146797,'vm:12259:689227','{"passed": false, "n_rows": 40000, "checks": [{"name": "required_columns", "passed": false, "failing_rows": 40000, "examples": ["missing column: diagnosis_group"], "detail": "Fix the column layout (missing column: diagnosis_group): each of claim_id, service_date, cpt_bucket, provider_type, diagnosis_group, billed_amount, allowed_amount, patient_age, outcome must appear exactly once; extra columns are ignored."}, {"name": "dtypes", "passed": false, "failing_rows": 0, "examples": [], "detail": "Not fully evaluated because diagnosis_group is missing; fix required_columns and dtypes first."}, {"name": "allowed_categories", "passed": false, "failing_rows": 0, "examples": [], "detail": "Not fully evaluated because diagnosis_group is missing; fix required_columns and dtypes first."}, {"name": "billed_amount_positive", "passed": true, "failing_rows": 0, "examples": [], "detail": ""}, {"name": "allowed_amount_positive", "passed": true, "failing_rows": 0, "examples": [], "detail": ""}, {"name": "allowed_within_billed", "passed": true, "failing_rows": 0, "examples": [], "detail": ""}, {"name": "patient_age_range", "passed": true, "failing_rows": 0, "examples": [], "detail": ""}, {"name": "no_nulls", "passed": false, "failing_rows": 0, "examples": [], "detail": "Not fully evaluated because diagnosis_group is missing; fix required_columns and dtypes first."}, {"name": "unique_claim_id", "passed": true, "failing_rows": 0, "examples": [], "detail": ""}]}','data contract violated in 4 checks (required_columns, dtypes, allowed_categories, no_nulls); first: Fix the column layout (missing column: diagnosis_group): each of claim_id, service_date, cpt_bucket, provider_type, diagnosis_group, billed_amount, allowed_amount, patient_age, outcome must appear exactly once; extra columns are ignored.');
INSERT INTO steps VALUES(4,1,'ci_quick_train',3,'CI','skipped',0,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO steps VALUES(5,1,'mlflow_log_ci',4,'CI','skipped',0,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO steps VALUES(6,1,'cd_full_train',5,'CD','skipped',0,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO steps VALUES(7,1,'evaluate_vs_champion',6,'CD','skipped',0,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO steps VALUES(8,1,'manual_approval',7,'CD','skipped',0,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO steps VALUES(9,1,'deploy_staging',8,'Deploy','skipped',0,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO steps VALUES(10,1,'shadow_monitor',9,'Deploy','skipped',0,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO steps VALUES(11,1,'promote_prod',10,'Deploy','skipped',0,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO steps VALUES(12,2,'commit_received',0,'CI','succeeded',1,1796599126.6113862991,1796599126.6263959408,1796599126.6657156944,1796599126.6263959408,'vm:12433:80130d','{"sha": "b1d2d5af2d38f93b5a81b87c15066aa4f5dcc739", "message": "made by 76bfc14, CI passed", "author": "", "seed": 42, "dataset_window": "2025-01-01..2025-06-30", "window_days": 181, "failure_modes": []}',NULL);
INSERT INTO steps VALUES(13,2,'ci_tests',1,'CI','succeeded',1,1796599126.681379795,1796599126.6882910728,1796599139.0517497062,1796599138.5531790256,'vm:12433:80130d','{"tests": [{"name": "test_contract::test_generated_claims_pass_the_contract", "outcome": "passed", "duration": 0.054, "message": ""}, {"name": "test_contract::test_missing_column_is_named", "outcome": "passed", "duration": 0.037, "message": ""}, {"name": "test_contract::test_allowed_above_billed_is_caught", "outcome": "passed", "duration": 0.048, "message": ""}, {"name": "test_generator::test_same_seed_same_frame", "outcome": "passed", "duration": 0.177, "message": ""}, {"name": "test_generator::test_invariants", "outcome": "passed", "duration": 0.236, "message": ""}, {"name": "test_training::test_model_fits_the_run_sample", "outcome": "passed", "duration": 0.423, "message": ""}], "passed": 6, "failed": 0, "skipped": 0, "duration_seconds": 0.975, "exit_code": 0, "sample_rows": 2000, "lint": {"tool": "ruff", "issues": [], "exit_code": 0}}',NULL);
INSERT INTO steps VALUES(14,2,'data_validation',2,'CI','succeeded',1,1796599126.6824405192,1796599126.6941821575,1796599127.0109887122,1796599126.6941821575,'vm:12433:80130d','{"passed": true, "n_rows": 40000, "checks": [{"name": "required_columns", "passed": true, "failing_rows": 0, "examples": [], "detail": ""}, {"name": "dtypes", "passed": true, "failing_rows": 0, "examples": [], "detail": ""}, {"name": "allowed_categories", "passed": true, "failing_rows": 0, "examples": [], "detail": ""}, {"name": "billed_amount_positive", "passed": true, "failing_rows": 0, "examples": [], "detail": ""}, {"name": "allowed_amount_positive", "passed": true, "failing_rows": 0, "examples": [], "detail": ""}, {"name": "allowed_within_billed", "passed": true, "failing_rows": 0, "examples": [], "detail": ""}, {"name": "patient_age_range", "passed": true, "failing_rows": 0, "examples": [], "detail": ""}, {"name": "no_nulls", "passed": true, "failing_rows": 0, "examples": [], "detail": ""}, {"name": "unique_claim_id", "passed": true, "failing_rows": 0, "examples": [], "detail": ""}]}',NULL);
INSERT INTO steps VALUES(15,2,'ci_quick_train',3,'CI','succeeded',1,1796599127.0291519165,1796599127.0524272918,1796599130.9297671317,1796599130.10277009,'vm:12433:80130d','{"metrics": {"n_rows": 2000, "accuracy": 0.8295, "precision": 0.8496, "recall": 0.9203, "f1": 0.8836, "roc_auc": 0.891, "false_denial_rate": 0.0797, "confusion_matrix": {"labels": ["Approved", "Denied"], "matrix": [[1294, 112], [229, 365]], "actual_Approved": {"predicted_Approved": 1294, "predicted_Denied": 112}, "actual_Denied": {"predicted_Approved": 229, "predicted_Denied": 365}}}, "params": {"n_estimators": 20, "max_leaf_nodes": 128, "max_features": 4, "min_samples_leaf": 10, "max_samples": 0.5, "n_jobs": 2}, "train_rows": 6000, "holdout_rows": 2000, "fit_seconds": 0.267}',NULL);
INSERT INTO steps VALUES(16,2,'mlflow_log_ci',4,'CI','succeeded',1,1796599130.9317708015,1796599131.0344521999,1796599147.5344009398,1796599146.7648823261,'vm:12433:80130d','{"mlflow_run_id": "7a00bc0ef1a148a998478a9bc9971fef", "experiment": "claims-settlement", "tracking_uri": "sqlite:////tmp/store-76bfc14/mlflow.db", "dataset_digest": "773c781d", "tags": {"commit_sha": "b1d2d5af2d38f93b5a81b87c15066aa4f5dcc739", "stage": "CI", "dataset_window": "2025-01-01..2025-06-30", "seed": "42", "model_version": "unregistered", "pipeline_run_id": "2"}}',NULL);
INSERT INTO steps VALUES(17,2,'cd_full_train',5,'CD','pending',0,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO steps VALUES(18,2,'evaluate_vs_champion',6,'CD','pending',0,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO steps VALUES(19,2,'manual_approval',7,'CD','pending',0,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO steps VALUES(20,2,'deploy_staging',8,'Deploy','pending',0,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO steps VALUES(21,2,'shadow_monitor',9,'Deploy','pending',0,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO steps VALUES(22,2,'promote_prod',10,'Deploy','pending',0,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
CREATE INDEX ix_runs_status ON runs (status);
CREATE INDEX ix_runs_created ON runs (created_at);
CREATE INDEX ix_logs_run_step_id ON logs (run_id, step, id);
CREATE INDEX ix_audit_ts ON audit (ts);
CREATE INDEX ix_alias_history ON alias_history (alias, since);
CREATE INDEX ix_steps_run ON steps (run_id, position);
CREATE INDEX ix_steps_status_queued ON steps (status, queued_at);
COMMIT;
